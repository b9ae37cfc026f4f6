"""Ground-truth speech activity from a CLEAN recording, and interval arithmetic on it.

The labeller sees each utterance alone, before any noise, leak or the other party is mixed
in, so a simple energy rule is reliable: a 10 ms frame is speech when it is within 30 dB of
the utterance's loud frames and clearly above its own quiet frames. Gaps shorter than
``bridge_s`` are bridged (the pauses between words are part of a turn, as a listener hears
it) and blips shorter than 60 ms are dropped.
"""

from __future__ import annotations

import numpy as np

from bench.audio import frame_db

FRAME_S = 0.01
Interval = tuple[float, float]


def speech_segments(x: np.ndarray, rate: int, bridge_s: float = 0.2) -> list[Interval]:
    """Speech intervals (seconds) of a clean recording."""
    frame = int(rate * FRAME_S)
    d = frame_db(x, frame)
    if len(d) == 0:
        return []
    loud = float(np.percentile(d, 95))
    quiet = float(np.percentile(d, 10))
    thr = max(loud - 30.0, quiet + 12.0, -70.0)
    active = d > thr
    segs = _runs(active)
    segs = bridge([(a * FRAME_S, b * FRAME_S) for a, b in segs], bridge_s)
    return [(a, b) for a, b in segs if b - a >= 0.06]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a boolean array."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def bridge(segs: list[Interval], gap_s: float) -> list[Interval]:
    """Merge sorted-or-not intervals whose gap is shorter than ``gap_s``."""
    out: list[Interval] = []
    for a, b in sorted(segs):
        if out and a - out[-1][1] < gap_s:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersect(xs: list[Interval], ys: list[Interval]) -> list[Interval]:
    """Pairwise intersection of two sorted, disjoint interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(xs) and j < len(ys):
        a = max(xs[i][0], ys[j][0])
        b = min(xs[i][1], ys[j][1])
        if b > a:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def total(segs: list[Interval]) -> float:
    """Summed length of disjoint intervals."""
    return float(sum(b - a for a, b in segs))
