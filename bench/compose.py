"""Two-party call timelines from clean utterances, and the ground truth they imply.

A :class:`Timeline` places utterances on the agent and customer tracks and remembers where
each party's clean speech is. Interruptions are real: the interrupted party is cut off
(with a short fade) some time after the other starts, as people yield when talked over.

The truth is derived from the placed speech, not from the plan, so what a test or the
benchmark expects is what is in the audio:

* a party's *talk spurt* is its speech with pauses shorter than ``SPURT_BRIDGE_S`` bridged;
* a *talk-over* is a stretch where both parties' spurts overlap for at least
  ``TALK_OVER_MIN_S`` (DESIGN.md §5: 0.8 s), merged across gaps under ``SPURT_BRIDGE_S``;
  its initiator is the party whose spurt started last (whose onset created the overlap);
* overlaps within ``AMBIGUOUS_S`` of the threshold are recorded as ambiguous: the benchmark
  neither requires nor penalises a detection there, because no labeller is that precise;
* *dead air* is both parties silent for at least ``DEAD_AIR_MIN_S`` inside the call.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from bench.labels import Interval, bridge, intersect
from bench.sources import RATE, Utterance

PARTIES = ("agent", "customer")
SPURT_BRIDGE_S = 0.3
TALK_OVER_MIN_S = 0.8
AMBIGUOUS_S = (0.7, 0.9)
DEAD_AIR_MIN_S = 5.0
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


def _initiator(t: float, spurts: dict[str, list[Interval]]) -> str:
    """The party whose spurt covering ``t`` began last: its onset made the overlap."""
    starts = {}
    for p in PARTIES:
        starts[p] = max((a for a, b in spurts[p] if a <= t + 1e-6 and b > t - 1e-6),
                        default=t)
    return "agent" if starts["agent"] > starts["customer"] else "customer"


def derive_truth(tl: Timeline) -> dict[str, object]:
    """Talk-overs, ambiguous and short overlaps, and dead air, from the placed speech."""
    spurts = {p: tl.spurts(p) for p in PARTIES}
    overlaps = bridge(intersect(spurts["agent"], spurts["customer"]), SPURT_BRIDGE_S)
    talk_overs, ambiguous, short = [], [], []
    for a, b in overlaps:
        item = {"start_s": round(a, 3), "end_s": round(b, 3),
                "initiator": _initiator(a, spurts)}
        if b - a >= AMBIGUOUS_S[1]:
            talk_overs.append(item)
        elif b - a >= AMBIGUOUS_S[0]:
            ambiguous.append(item)
        else:
            short.append({"start_s": item["start_s"], "end_s": item["end_s"]})
    either = bridge(spurts["agent"] + spurts["customer"], 0.0)
    dead_air = [
        {"start_s": round(b0, 3), "end_s": round(a1, 3)}
        for (_, b0), (a1, _) in itertools.pairwise(either)
        if a1 - b0 >= DEAD_AIR_MIN_S
    ]
    return {
        "talk_overs": talk_overs,
        "ambiguous_overlaps": ambiguous,
        "short_overlaps": short,
        "dead_air": dead_air,
        "spurts": {p: [[round(a, 3), round(b, 3)] for a, b in spurts[p]] for p in PARTIES},
    }
