"""Per-stream and per-call statistics: what the report, the call summary and the metrics show.

Snapshots are immutable dataclasses built on request; the pipeline keeps plain counters, so
reading stats costs nothing on the per-frame path.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamStats:
    """One party's measurements over a span (a call, or the pipeline's whole life)."""

    audio_s: float
    speech_s: float
    active_level_dbfs: float | None
    """ITU-T P.56 method B active speech level over the party's talk spurts."""
    noise_floor_dbfs: float | None
    """Power mean of the party's non-speech frames."""
    snr_db: float | None
    clipped_samples: int
    clipped_ratio: float
    rms_dbfs: float
    """Level of the latest frame (live meters)."""
    peak_dbfs: float
    """Peak of the latest frame (live meters)."""
    speaking: bool
    """Whether the party is in a talk spurt at the latest frame."""
    talk_share: float | None = None
    """The party's share of both parties' speech time (0..1), None without speech."""
    longest_turn_s: float = 0.0
    """The party's longest turn (see :mod:`dsp.detectors.turns`)."""
    speech_rate_sps: float | None = None
    """Articulation rate, syllables per second of speech; None with too little speech."""


@dataclass(frozen=True, slots=True)
class TalkOverStats:
    count: int
    seconds: float
    by_agent: int
    by_customer: int
    seconds_by_agent: float = 0.0
    """Seconds of the talk-overs the agent started."""
    seconds_by_customer: float = 0.0
    noise_check: str = "off"
    """``silero`` when a talk-over with a party in loud or swelling noise had to be heard by
    silero to count (:mod:`dsp.voice_confirm`), ``off`` when silero is not there or
    ``confirm_vad = "none"``: two machines' reports of one call can differ by it."""


@dataclass(frozen=True, slots=True)
class CallStats:
    agent: StreamStats
    customer: StreamStats
    talk_over: TalkOverStats
    duration_s: float
