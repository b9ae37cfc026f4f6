"""Scoring: one-to-one event matching, F1 arithmetic and the per-call rules, on hand-built cases."""

from __future__ import annotations

import pytest

from bench.score import aggregate, f1, match, score_call


def truth(talk_overs, ambiguous=(), conditions=("clean",), expected=None, snr=30.0):
    side = {"active_level_dbfs": -26.0, "noise_floor_dbfs": -56.0, "snr_db": snr,
            "speech_s": 10.0}
    return {
        "file": "x.wav", "duration_s": 360.0, "conditions": list(conditions),
        "talk_overs": [{"start_s": a, "end_s": b, "initiator": i} for a, b, i in talk_overs],
        "ambiguous_overlaps": [{"start_s": a, "end_s": b} for a, b in ambiguous],
        "noise_alert_expected": expected, "agent": dict(side), "customer": dict(side),
        "dead_air": [],
    }


def report(talk_overs, extra=(), level=-26.0, floor=-56.0):
    side = {"speech_s": 10.0, "active_level_dbfs": level, "noise_floor_dbfs": floor,
            "snr_db": None, "clipped_ratio": 0.0}
    events = [{"kind": "talk_over", "stream": None, "start_s": a, "end_s": b, "initiator": i}
              for a, b, i in talk_overs]
    return {"agent": dict(side), "customer": dict(side), "events": events + list(extra)}


def test_match_is_one_to_one_and_maximal():
    # One long detection spanning two truths matches only one of them.
    assert match([(0, 1), (2, 3)], [(0.5, 2.5)]) == [(0, 0)]
    # Taking detections in order would give d0 to truth 0 and leave truth 1 unmatched; the
    # maximum matching gives truth 0 the other detection (d1) and d0 to truth 1.
    assert match([(0, 2), (3, 4)], [(1, 3.5), (0.5, 1.5)]) == [(0, 1), (1, 0)]
    # Two detections of one truth: one match, the other is left over.
    assert match([(0, 2)], [(0, 1), (1.2, 2)]) == [(0, 0)]
    # Touching spans do not overlap.
    assert match([(0, 1)], [(1, 2)]) == []


def test_f1_arithmetic():
    p, r, f = f1(8, 2, 2)
    assert (p, r) == (0.8, 0.8)
    assert f == pytest.approx(0.8)
    p, r, f = f1(9, 1, 3)
    assert f == pytest.approx(2 * 0.9 * 0.75 / 1.65)
    assert f1(0, 0, 0) == (None, None, None)
    assert f1(0, 3, 2)[2] == 0.0


def test_score_call_counts_hits_misses_false_and_initiators():
    t = truth([(10, 12, "agent"), (20, 22, "customer"), (30, 31, "agent")])
    r = report([(10.2, 12.3, "agent"), (20.1, 21.0, "agent"), (40, 41, "agent")])
    s = score_call(t, r)
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert s.initiator_ok == 1
    agg = aggregate([s])
    assert agg["precision"] == pytest.approx(2 / 3)
    assert agg["recall"] == pytest.approx(2 / 3)
    assert agg["false_per_hour"] == pytest.approx(1 / 0.1)
    assert agg["initiator_accuracy"] == pytest.approx(0.5)


def test_detection_of_an_ambiguous_overlap_is_ignored_not_false():
    t = truth([], ambiguous=[(5.0, 5.8)])
    s = score_call(t, report([(5.1, 5.9, "agent"), (50, 51, "customer")]))
    assert (s.tp, s.fp, s.fn, s.ignored) == (0, 1, 0, 1)


def test_level_and_floor_errors_and_noise_alerts():
    t = truth([], expected=True, snr=8.0)
    noise = {"kind": "noise", "stream": "agent", "start_s": 1, "end_s": 9}
    s = score_call(t, report([], extra=[noise], level=-25.0, floor=-53.0))
    assert s.level_errors == []  # SNR under 20 dB: level not scored
    assert s.floor_errors == [3.0, 3.0]
    assert s.noise_fired
    quiet = truth([], expected=False)
    quiet["agent"]["noise_floor_dbfs"] = quiet["customer"]["noise_floor_dbfs"] = -70.0
    s = score_call(quiet, report([], level=-25.5, floor=-69.0))
    assert s.level_errors == [0.5, 0.5]
    assert s.quiet_floor_errors == [1.0, 1.0] and s.floor_errors == []
    assert not s.noise_fired
    customer_noise = dict(noise, stream="customer")
    assert score_call(quiet, report([], extra=[customer_noise])).noise_fired  # false alarm
    agg = aggregate([score_call(quiet, report([], extra=[customer_noise]))])
    assert (agg["noise_false_alarms"], agg["quiet_room_calls"]) == (1, 1)
