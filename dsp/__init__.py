"""Pure, sans-I/O signal processing for callwatch.

Samples in, typed events out; time is a sample index at :data:`ANALYSIS_RATE`. Nothing here
reads a clock, a socket, a file or the environment, so the same code serves live capture,
live replay and file analysis, and gives the same events however the audio is chunked.
"""

ANALYSIS_RATE = 16_000
"""Every stream is resampled to this rate before framing (webrtcvad's widest band)."""

FRAME_S = 0.02
"""Analysis frame length: 20 ms, one webrtcvad frame."""

FRAME_LEN = int(ANALYSIS_RATE * FRAME_S)
"""Samples per analysis frame (320)."""
