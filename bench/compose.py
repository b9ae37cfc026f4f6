"""Two-party call timelines from clean utterances.

A :class:`Timeline` places utterances on the agent and customer tracks and remembers where
each party's clean speech is, so the composer can plan interruptions inside a talk spurt
(speech with pauses shorter than ``SPURT_BRIDGE_S`` bridged). A talked-over party either
yields (:meth:`Timeline.cut`, with a short fade) or carries on, as the composer decides.

The timeline is only the plan: the truth a call is scored against is measured on the mixed
clean signals by :mod:`bench.truth` (DESIGN.md §4.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.labels import Interval, bridge
from bench.sources import RATE, Utterance

PARTIES = ("agent", "customer")
SPURT_BRIDGE_S = 0.3
CUT_FADE_S = 0.03


@dataclass
class Timeline:
    """Clean speech of both parties on one time axis at :data:`bench.sources.RATE`."""

    duration_s: float
    tracks: dict[str, np.ndarray] = field(init=False)
    segments: dict[str, list[Interval]] = field(init=False)
    placed: list[dict[str, object]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        n = round(self.duration_s * RATE)
        self.tracks = {p: np.zeros(n) for p in PARTIES}
        self.segments = {p: [] for p in PARTIES}

    def place(self, party: str, utt: Utterance, at_s: float, gain_db: float = 0.0,
              kind: str = "speech") -> float:
        """Add ``utt`` to ``party``'s track at ``at_s``; returns where its speech ends (s)."""
        track = self.tracks[party]
        i = round(at_s * RATE)
        n = min(len(utt.audio), len(track) - i)
        if n <= 0:
            return at_s
        track[i : i + n] += utt.audio[:n] * 10 ** (gain_db / 20)
        end_limit = (i + n) / RATE
        segs = [(at_s + a, min(at_s + b, end_limit)) for a, b in utt.segments
                if at_s + a < end_limit]
        self.segments[party].extend(segs)
        self.placed.append({"party": party, "utterance": utt.name, "source": utt.source,
                            "start_s": round(at_s, 3), "kind": kind})
        return segs[-1][1] if segs else at_s

    def cut(self, party: str, at_s: float) -> None:
        """Silence ``party`` from ``at_s`` on (fading out), as when a talker yields."""
        track = self.tracks[party]
        i = round(at_s * RATE)
        k = int(CUT_FADE_S * RATE)
        if i >= len(track):
            return
        fade = np.linspace(1.0, 0.0, min(k, len(track) - i))
        track[i : i + len(fade)] *= fade
        track[i + len(fade) :] = 0.0
        self.segments[party] = [(a, min(b, at_s)) for a, b in self.segments[party] if a < at_s]

    def speech_end(self, party: str) -> float:
        """End of ``party``'s last speech so far (0 if it has not spoken)."""
        return max((b for _, b in self.segments[party]), default=0.0)

    def spurts(self, party: str) -> list[Interval]:
        """Talk spurts of ``party``: speech with short pauses bridged."""
        return bridge(self.segments[party], SPURT_BRIDGE_S)

