"""Typed, sample-indexed events: the one vocabulary shared by analysis, alerts and metrics.

A condition that lasts (talk-over, noise, dead air, ...) produces two events: ``BEGIN`` as
soon as the detector has confirmed it (so live alerts can fire while it lasts) and ``END``
when it is over, carrying the final extent and measurements. File analysis keeps the ``END``
events; :meth:`dsp.pipeline.Pipeline.finish` closes any condition still open at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from dsp import ANALYSIS_RATE


def rounded(value: float) -> float:
    """A measurement as reports and alerts give it: two decimals, or three significant digits
    for the small ratios and thresholds (a clipping threshold of 0.001) that two decimals
    would turn into 0.0."""
    if value == 0 or abs(value) >= 0.1 or not math.isfinite(value):
        return round(value, 2)
    return float(f"{value:.3g}")


class Kind(StrEnum):
    """What was detected. The values are the ``kind`` strings of the JSON contracts."""

    TALK_OVER = "talk_over"
    TOO_QUIET = "too_quiet"
    TOO_LOUD = "too_loud"
    NOISE = "noise"
    CLIPPING = "clipping"
    ECHO = "echo"
    SILENCE = "silence"
    MIC_DEAD = "mic_dead"
    FAST_SPEECH = "fast_speech"
    MONOLOGUE = "monologue"
    ACOUSTIC_SHOCK = "acoustic_shock"
    LOUD_FAR_END = "loud_far_end"
    EXPOSURE = "exposure"
    """The day's noise exposure at the agent's ear reached an action value: a live alert of
    the daemon (the exposure spans calls and days), never an event of one analysed call."""


class Stream(StrEnum):
    """Which side of the call: the agent's microphone or the far-end (customer) audio."""

    AGENT = "agent"
    CUSTOMER = "customer"


class Phase(StrEnum):
    """``BEGIN`` when a condition is confirmed, ``END`` when it is over."""

    BEGIN = "begin"
    END = "end"


@dataclass(frozen=True, slots=True)
class Event:
    """One detection.

    ``start`` and ``end`` are sample indices at :data:`dsp.ANALYSIS_RATE` from the start of the
    pipeline (for a ``BEGIN`` event, ``end`` is the index at which it was confirmed).
    ``stream`` is ``None`` for conditions of the whole call (talk-over, dead air).
    ``data`` holds the measurements and thresholds, JSON-ready (str, int, float), for example
    ``initiator`` for talk-over, ``level_dbfs``/``threshold_dbfs`` for levels,
    ``coupling_db``/``delay_ms`` for echo.
    """

    kind: Kind
    phase: Phase
    stream: Stream | None
    start: int
    end: int
    data: Mapping[str, str | int | float] = field(default_factory=dict)

    @property
    def start_s(self) -> float:
        return self.start / ANALYSIS_RATE

    @property
    def end_s(self) -> float:
        return self.end / ANALYSIS_RATE

    def to_json(self) -> dict[str, object]:
        """The event as in the ``callwatch.analysis/1`` report (times in seconds)."""
        out: dict[str, object] = {
            "kind": self.kind.value,
            "stream": self.stream.value if self.stream is not None else None,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
        }
        for key, value in self.data.items():
            out[key] = rounded(value) if isinstance(value, float) else value
        return out
