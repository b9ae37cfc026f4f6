"""The webrtcvad adapter: the only module that touches WebRTC's voice activity detector.

Kept apart from the talk-spurt state machine (:mod:`dsp.activity`) so the model can be
swapped or tested on its own, as pipecat does with its VAD analyzers.

It drives ``_webrtcvad``, the C extension of the webrtcvad(-wheels) distribution, directly:
the thin ``webrtcvad.Vad`` wrapper only adds a length check and a Python call per frame, and
importing it pulls in ``importlib.metadata`` for a version string, about 50 ms of start-up on
every ``callwatch analyze`` run. The C calls are the same ones the wrapper makes.
"""

from __future__ import annotations

import _webrtcvad
import numpy as np

from dsp import ANALYSIS_RATE


class WebRtcVad:
    """Frame-level speech/non-speech decisions from WebRTC's GMM voice activity detector."""

    def __init__(self, mode: int) -> None:
        self._vad = _webrtcvad.create()
        _webrtcvad.init(self._vad)
        self.set_mode(mode)

    def set_mode(self, mode: int) -> None:
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"webrtcvad mode must be 0, 1, 2 or 3, not {mode!r}")
        _webrtcvad.set_mode(self._vad, mode)

    def is_speech(self, frame_pcm16: bytes) -> bool:
        """One 10/20/30 ms frame of 16-bit little-endian PCM at :data:`dsp.ANALYSIS_RATE`."""
        return bool(_webrtcvad.process(self._vad, ANALYSIS_RATE, frame_pcm16,
                                       len(frame_pcm16) // 2))

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        """Clear ``candidates[k]`` for every candidate frame the VAD calls non-speech.

        ``frames_pcm16`` is ``(n, frame_len)`` int16; ``candidates`` a boolean array of the
        frames worth asking about (the energy gates passed). Done in one loop here so the
        per-frame cost is one C call.
        """
        process, vad, rate = _webrtcvad.process, self._vad, ANALYSIS_RATE
        length = frames_pcm16.shape[1]
        for k in np.flatnonzero(candidates).tolist():
            if not process(vad, rate, frames_pcm16[k].tobytes(), length):
                candidates[k] = False


def to_pcm16(frames: np.ndarray) -> np.ndarray:
    """Float frames in [-1, 1) to int16 (saturating, truncating), the format webrtcvad takes."""
    scaled = frames * np.float32(32768.0)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype("<i2")
