"""Scoring one analysis report (``callwatch.analysis/1``) against one truth file, by the rules
of DESIGN.md §4.4 (the truth itself is built by :mod:`bench.truth`).

Talk-overs: a reported talk-over matches a true one when their intervals intersect; each true
event matches at most one report. Reports are first matched to the events that must be found
(>= 1.0 s; a maximum one-to-one matching, so one long report spanning two events counts
once), then the rest to the events where either answer is right (0.3-1.0 s), which count
neither as hits nor as false. Every report left over is a false talk-over: a second report on
an already matched event (a split alert), and a report touching only must-not events
(< 0.3 s) or none. Initiator accuracy is taken on all matches whose truth has an initiator.

The other checks:

* levels: reported active level minus P.56 of the clean signal, every party with speech
  (and separately where the SNR is >= 20 dB); noise floor against the RMS of the added
  noise on steady-noise calls without leak;
* ``speech_s``: (reported - true) / true per party;
* ``mic_dead``: any on a call whose mic works is false;
* dead air: a true dead-air stretch inside the call is hit when a ``silence`` event intersects
  it; a ``silence`` event is false dead air when a party is active during it for more than
  :data:`DEAD_AIR_SLACK_S` in all (a report over a 4.9 s gap is not wrong, one over speech is);
* ``too_quiet`` / ``too_loud``: expected for a party whose clean level is under
  -38 dBFS - :data:`LEVEL_TOLERANCE_DB` (resp. over -12 dBFS + tolerance, or clipped), false
  for a party above -38 dBFS + tolerance (resp. under -12 dBFS - tolerance, not clipped);
  within the tolerance either answer is right, since a level measured 0.3 dB off is within
  the target. Parties with under :data:`LEVEL_ALERT_MIN_SPEECH_S` of speech are not scored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Span = tuple[float, float]
PARTIES = ("agent", "customer")
SNR_FOR_LEVEL_DB = 20.0
STEADY_NOISE = ("clean", "babble", "rain", "hum", "low_level", "quiet_party", "sample")
QUIET_ROOM_DBFS = -60.0
TOO_QUIET_DBFS = -38.0
TOO_LOUD_DBFS = -12.0
LEVEL_TOLERANCE_DB = 1.0
LEVEL_ALERT_MIN_SPEECH_S = 5.0
DEAD_AIR_SLACK_S = 0.5


def overlaps(a: Span, b: Span) -> bool:
    """True when two time spans share a positive stretch of time."""
    return min(a[1], b[1]) > max(a[0], b[0])


def _common(a: Span, b: Span) -> float:
    """Length of time two spans share (0 if none)."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def match(truth: Sequence[Span], detected: Sequence[Span],
          taken: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """Maximum one-to-one matching of overlapping spans, as (truth index, detected index);
    detections in ``taken`` are not used."""
    owner: dict[int, int] = {}  # detected index -> truth index

    def augment(t: int, seen: set[int]) -> bool:
        for d, span in enumerate(detected):
            if d in seen or d in taken or not overlaps(truth[t], span):
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
    optional_matched: int = 0
    initiator_ok: int = 0
    initiator_n: int = 0
    level_errors: list[float] = field(default_factory=list)
    level_errors_snr20: list[float] = field(default_factory=list)
    floor_errors: list[float] = field(default_factory=list)  # floor >= QUIET_ROOM_DBFS
    quiet_floor_errors: list[float] = field(default_factory=list)  # quiet-room floors
    speech_errors: list[float] = field(default_factory=list)  # relative
    noise_expected: bool | None = None
    noise_fired: bool = False
    mic_dead_false: int = 0
    dead_air_true: int = 0
    dead_air_hit: int = 0
    dead_air_false: int = 0
    too_quiet_expected: dict[str, int] = field(default_factory=dict)
    too_quiet_hit: dict[str, int] = field(default_factory=dict)
    too_quiet_false: int = 0
    too_loud_expected: int = 0
    too_loud_hit: int = 0
    too_loud_false: int = 0


def _spans(items: Iterable[dict[str, Any]]) -> list[Span]:
    return [(float(e["start_s"]), float(e["end_s"])) for e in items]


def _score_talk_overs(s: CallScore, truth: dict[str, Any], det: list[dict[str, Any]]) -> None:
    must = truth["talk_overs"]
    either = truth.get("optional_talk_overs", [])
    spans = _spans(det)
    hits = match(_spans(must), spans)
    used = frozenset(d for _, d in hits)
    soft = match(_spans(either), spans, used)
    s.tp, s.fn = len(hits), len(must) - len(hits)
    s.optional_matched = len(soft)
    s.fp = len(det) - len(hits) - len(soft)
    for events, pairs in ((must, hits), (either, soft)):
        for t, d in pairs:
            if events[t].get("initiator") is not None:
                s.initiator_n += 1
                s.initiator_ok += events[t]["initiator"] == det[d].get("initiator")


def _score_levels(s: CallScore, truth: dict[str, Any], report: dict[str, Any]) -> None:
    for party in PARTIES:
        t, r = truth[party], report.get(party, {})
        if r.get("active_level_dbfs") is not None and t["active_level_dbfs"] is not None:
            err = float(r["active_level_dbfs"]) - float(t["active_level_dbfs"])
            s.level_errors.append(err)
            if t["snr_db"] is not None and t["snr_db"] >= SNR_FOR_LEVEL_DB:
                s.level_errors_snr20.append(err)
        if (r.get("noise_floor_dbfs") is not None
                and any(c in STEADY_NOISE for c in s.conditions)
                and "leak" not in s.conditions):
            err = float(r["noise_floor_dbfs"]) - float(t["noise_floor_dbfs"])
            if float(t["noise_floor_dbfs"]) >= QUIET_ROOM_DBFS:
                s.floor_errors.append(err)
            else:
                s.quiet_floor_errors.append(err)
        if r.get("speech_s") is not None and t.get("speech_s"):
            s.speech_errors.append((float(r["speech_s"]) - float(t["speech_s"]))
                                   / float(t["speech_s"]))


def _score_level_alerts(s: CallScore, truth: dict[str, Any], events: list[dict[str, Any]]
                        ) -> None:
    clipped = set(truth.get("clipped", []))
    for party in PARTIES:
        t = truth[party]
        level = t["active_level_dbfs"]
        if level is None or float(t.get("speech_s") or 0.0) < LEVEL_ALERT_MIN_SPEECH_S:
            continue
        quiet = any(e["kind"] == "too_quiet" and e.get("stream") == party for e in events)
        loud = any(e["kind"] == "too_loud" and e.get("stream") == party for e in events)
        if level < TOO_QUIET_DBFS - LEVEL_TOLERANCE_DB:
            s.too_quiet_expected[party] = s.too_quiet_expected.get(party, 0) + 1
            s.too_quiet_hit[party] = s.too_quiet_hit.get(party, 0) + quiet
        elif level >= TOO_QUIET_DBFS + LEVEL_TOLERANCE_DB:
            s.too_quiet_false += quiet
        if level > TOO_LOUD_DBFS + LEVEL_TOLERANCE_DB or party in clipped:
            s.too_loud_expected += 1
            s.too_loud_hit += loud
        elif level <= TOO_LOUD_DBFS - LEVEL_TOLERANCE_DB:
            s.too_loud_false += loud


def score_call(truth: dict[str, Any], report: dict[str, Any]) -> CallScore:
    """Score one report against its truth."""
    s = CallScore(str(truth["file"]), list(truth["conditions"]),
                  float(truth["duration_s"]) / 3600.0)
    events = report.get("events", [])
    _score_talk_overs(s, truth, [e for e in events if e["kind"] == "talk_over"])
    _score_levels(s, truth, report)
    _score_level_alerts(s, truth, events)
    s.noise_expected = truth.get("noise_alert_expected")
    noise = [e for e in events if e["kind"] == "noise"]
    s.noise_fired = (any(e.get("stream") == "agent" for e in noise) if s.noise_expected
                     else bool(noise))
    if truth.get("mic_works", True):
        s.mic_dead_false = sum(e["kind"] == "mic_dead" for e in events)
    dead = _spans(truth.get("dead_air", []))
    active = [(float(a), float(b)) for p in PARTIES
              for a, b in truth.get("activity", {}).get(p, [])]
    silences = _spans(e for e in events if e["kind"] == "silence")
    s.dead_air_true = len(dead)
    s.dead_air_hit = sum(any(overlaps(d, x) for x in silences) for d in dead)
    s.dead_air_false = sum(sum(_common(x, a) for a in active) > DEAD_AIR_SLACK_S
                           for x in silences)
    return s


def _abs_stats(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"mean_abs": None, "max_abs": None, "n": 0}
    a = [abs(x) for x in xs]
    return {"mean_abs": sum(a) / len(a), "max_abs": max(a), "n": len(a)}


def _per_party(scores: Sequence[CallScore], name: str) -> dict[str, int]:
    return {p: sum(getattr(s, name).get(p, 0) for s in scores) for p in PARTIES}


def aggregate(scores: Sequence[CallScore]) -> dict[str, Any]:
    """Set-level figures from per-call scores."""
    tp = sum(s.tp for s in scores)
    fp = sum(s.fp for s in scores)
    fn = sum(s.fn for s in scores)
    hours = sum(s.hours for s in scores)
    p, r, f = f1(tp, fp, fn)
    expected = [s for s in scores if s.noise_expected is True]
    forbidden = [s for s in scores if s.noise_expected is False]
    init_n = sum(s.initiator_n for s in scores)
    speech = [e for s in scores for e in s.speech_errors]
    return {
        "calls": len(scores),
        "hours": hours,
        "true_talk_overs": tp + fn,
        "tp": tp, "fp": fp, "fn": fn,
        "optional_matched": sum(s.optional_matched for s in scores),
        "precision": p, "recall": r, "f1": f,
        "false_per_hour": fp / hours if hours else None,
        "initiator_accuracy": (sum(s.initiator_ok for s in scores) / init_n) if init_n else None,
        "initiator_n": init_n,
        "level_error_db": _abs_stats([e for s in scores for e in s.level_errors]),
        "level_error_db_snr20": _abs_stats([e for s in scores for e in s.level_errors_snr20]),
        "floor_error_db": _abs_stats([e for s in scores for e in s.floor_errors]),
        "quiet_floor_error_db": _abs_stats([e for s in scores for e in s.quiet_floor_errors]),
        "speech_s_rel_error": {**_abs_stats(speech),
                               "within_10pct": sum(abs(e) <= 0.10 for e in speech)},
        "noise_alert_expected": len(expected),
        "noise_alert_hits": sum(s.noise_fired for s in expected),
        "quiet_room_calls": len(forbidden),
        "noise_false_alarms": sum(s.noise_fired for s in forbidden),
        "mic_dead_false": sum(s.mic_dead_false for s in scores),
        "dead_air_true": sum(s.dead_air_true for s in scores),
        "dead_air_hits": sum(s.dead_air_hit for s in scores),
        "dead_air_false": sum(s.dead_air_false for s in scores),
        "too_quiet_expected": _per_party(scores, "too_quiet_expected"),
        "too_quiet_hits": _per_party(scores, "too_quiet_hit"),
        "too_quiet_false": sum(s.too_quiet_false for s in scores),
        "too_loud_expected": sum(s.too_loud_expected for s in scores),
        "too_loud_hits": sum(s.too_loud_hit for s in scores),
        "too_loud_false": sum(s.too_loud_false for s in scores),
    }
