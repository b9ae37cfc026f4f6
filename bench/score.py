"""Scoring one analysis report (``callwatch.analysis/1``) against one truth file.

Talk-over events are matched one-to-one: a detection may match a true talk-over when their
time spans overlap, and the matching is a maximum bipartite matching, so a long detection
spanning two true talk-overs counts once, and two detections of one talk-over give one hit
and one false alarm. Detections that match no true talk-over but overlap an *ambiguous*
overlap (within 0.1 s of the 0.8 s threshold, see :mod:`bench.compose`) are ignored rather
than counted as false. Everything else unmatched is a false talk-over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Span = tuple[float, float]
SNR_FOR_LEVEL_DB = 20.0
STEADY_NOISE = ("clean", "babble", "rain", "hum", "low_level", "sample")
QUIET_ROOM_DBFS = -60.0


def overlaps(a: Span, b: Span) -> bool:
    """True when two time spans share a positive stretch of time."""
    return min(a[1], b[1]) > max(a[0], b[0])


def match(truth: Sequence[Span], detected: Sequence[Span]) -> list[tuple[int, int]]:
    """Maximum one-to-one matching of overlapping spans, as (truth index, detected index)."""
    owner: dict[int, int] = {}  # detected index -> truth index

    def augment(t: int, seen: set[int]) -> bool:
        for d, span in enumerate(detected):
            if d in seen or not overlaps(truth[t], span):
                continue
            seen.add(d)
            if d not in owner or augment(owner[d], seen):
                owner[d] = t
                return True
        return False

    for t in range(len(truth)):
        augment(t, set())
    return sorted((t, d) for d, t in owner.items())


def f1(tp: int, fp: int, fn: int) -> tuple[float | None, float | None, float | None]:
    """Precision, recall and F1; None where the ratio has no denominator."""
    p = tp / (tp + fp) if tp + fp else None
    r = tp / (tp + fn) if tp + fn else None
    if p is None or r is None:
        return p, r, None
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@dataclass
class CallScore:
    """Counts and errors of one call, summed later by :func:`aggregate`."""

    file: str
    conditions: list[str]
    hours: float
    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0
    initiator_ok: int = 0
    level_errors: list[float] = field(default_factory=list)
    floor_errors: list[float] = field(default_factory=list)  # floor >= QUIET_ROOM_DBFS
    quiet_floor_errors: list[float] = field(default_factory=list)  # quiet-room floors
    noise_expected: bool | None = None
    noise_fired: bool = False
    dead_air_true: int = 0
    dead_air_hit: int = 0


def _spans(items: Iterable[dict[str, Any]]) -> list[Span]:
    return [(float(e["start_s"]), float(e["end_s"])) for e in items]


def score_call(truth: dict[str, Any], report: dict[str, Any]) -> CallScore:
    """Score one report against its truth."""
    s = CallScore(str(truth["file"]), list(truth["conditions"]),
                  float(truth["duration_s"]) / 3600.0)
    events = report.get("events", [])
    det = [e for e in events if e["kind"] == "talk_over"]
    true = truth["talk_overs"]
    pairs = match(_spans(true), _spans(det))
    s.tp = len(pairs)
    s.fn = len(true) - s.tp
    s.initiator_ok = sum(true[t]["initiator"] == det[d].get("initiator") for t, d in pairs)
    matched = {d for _, d in pairs}
    amb = _spans(truth.get("ambiguous_overlaps", []))
    for d, span in enumerate(_spans(det)):
        if d in matched:
            continue
        if any(overlaps(span, a) for a in amb):
            s.ignored += 1
        else:
            s.fp += 1
    for party in ("agent", "customer"):
        t, r = truth[party], report.get(party, {})
        if (t["snr_db"] is not None and t["snr_db"] >= SNR_FOR_LEVEL_DB
                and r.get("active_level_dbfs") is not None
                and t["active_level_dbfs"] is not None):
            s.level_errors.append(float(r["active_level_dbfs"]) - float(t["active_level_dbfs"]))
        if (r.get("noise_floor_dbfs") is not None
                and any(c in STEADY_NOISE for c in s.conditions)
                and "leak" not in s.conditions):
            err = float(r["noise_floor_dbfs"]) - float(t["noise_floor_dbfs"])
            if float(t["noise_floor_dbfs"]) >= QUIET_ROOM_DBFS:
                s.floor_errors.append(err)
            else:
                s.quiet_floor_errors.append(err)
    s.noise_expected = truth.get("noise_alert_expected")
    noise = [e for e in events if e["kind"] == "noise"]
    s.noise_fired = (any(e.get("stream") == "agent" for e in noise) if s.noise_expected
                     else bool(noise))
    dead = truth.get("dead_air", [])
    silences = [e for e in events if e["kind"] == "silence"]
    s.dead_air_true = len(dead)
    s.dead_air_hit = len(match(_spans(dead), _spans(silences)))
    return s


def _abs_stats(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"mean_abs": None, "max_abs": None, "n": 0}
    a = [abs(x) for x in xs]
    return {"mean_abs": sum(a) / len(a), "max_abs": max(a), "n": len(a)}


def aggregate(scores: Sequence[CallScore]) -> dict[str, Any]:
    """Set-level figures from per-call scores."""
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    hours = sum(s.hours for s in scores)
    p, r, f = f1(tp, fp, fn)
    expected = [s for s in scores if s.noise_expected is True]
    forbidden = [s for s in scores if s.noise_expected is False]
    dead_true = sum(s.dead_air_true for s in scores)
    return {
        "calls": len(scores),
        "hours": hours,
        "true_talk_overs": tp + fn,
        "tp": tp, "fp": fp, "fn": fn,
        "ignored_ambiguous": sum(s.ignored for s in scores),
        "precision": p, "recall": r, "f1": f,
        "false_per_hour": fp / hours if hours else None,
        "initiator_accuracy": (sum(s.initiator_ok for s in scores) / tp) if tp else None,
        "level_error_db": _abs_stats([e for s in scores for e in s.level_errors]),
        "floor_error_db": _abs_stats([e for s in scores for e in s.floor_errors]),
        "quiet_floor_error_db": _abs_stats([e for s in scores for e in s.quiet_floor_errors]),
        "noise_alert_expected": len(expected),
        "noise_alert_hits": sum(s.noise_fired for s in expected),
        "quiet_room_calls": len(forbidden),
        "noise_false_alarms": sum(s.noise_fired for s in forbidden),
        "dead_air_true": dead_true,
        "dead_air_hits": sum(s.dead_air_hit for s in scores),
    }
