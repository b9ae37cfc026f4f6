"""Scoring by DESIGN.md §4.4: one-to-one matching, must/either/must-not talk-overs, split
alerts, levels, speech time and the alert checks, on hand-built cases."""

from __future__ import annotations

import pytest

from bench.score import aggregate, f1, match, score_call


def truth(talk_overs, optional=(), short=(), conditions=("clean",), expected=None, snr=30.0,
          level=-26.0, speech_s=10.0, dead_air=(), clipped=()):
    side = {"active_level_dbfs": level, "noise_floor_dbfs": -56.0, "snr_db": snr,
            "speech_s": speech_s}
    ev = lambda xs: [{"start_s": a, "end_s": b, "initiator": i} for a, b, i in xs]  # noqa: E731
    span = lambda xs: [{"start_s": a, "end_s": b} for a, b in xs]  # noqa: E731
    return {
        "file": "x.wav", "duration_s": 360.0, "conditions": list(conditions),
        "talk_overs": ev(talk_overs), "optional_talk_overs": ev(optional),
        "short_overlaps": ev(short), "noise_alert_expected": expected,
        "agent": dict(side), "customer": dict(side), "dead_air": span(dead_air),
        "mic_works": True, "clipped": list(clipped),
    }


def report(talk_overs, extra=(), level=-26.0, floor=-56.0, speech_s=10.0):
    side = {"speech_s": speech_s, "active_level_dbfs": level, "noise_floor_dbfs": floor,
            "snr_db": None, "clipped_ratio": 0.0}
    events = [{"kind": "talk_over", "stream": None, "start_s": a, "end_s": b, "initiator": i}
              for a, b, i in talk_overs]
    return {"agent": dict(side), "customer": dict(side), "events": events + list(extra)}


def ev(kind, stream, a, b):
    return {"kind": kind, "stream": stream, "start_s": a, "end_s": b}


def test_match_is_one_to_one_and_maximal():
    # One long detection spanning two truths matches only one of them.
    assert match([(0, 1), (2, 3)], [(0.5, 2.5)]) == [(0, 0)]
    # Taking detections in order would give d0 to truth 0 and leave truth 1 unmatched; the
    # maximum matching gives truth 0 the other detection (d1) and d0 to truth 1.
    assert match([(0, 2), (3, 4)], [(1, 3.5), (0.5, 1.5)]) == [(0, 1), (1, 0)]
    # Two detections of one truth: one match, the other is left over.
    assert match([(0, 2)], [(0, 1), (1.2, 2)]) == [(0, 0)]
    # Touching spans do not overlap; taken detections are not used.
    assert match([(0, 1)], [(1, 2)]) == []
    assert match([(0, 2)], [(0, 1)], frozenset({0})) == []


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
    assert (s.initiator_ok, s.initiator_n) == (1, 2)
    agg = aggregate([s])
    assert agg["precision"] == pytest.approx(2 / 3)
    assert agg["recall"] == pytest.approx(2 / 3)
    assert agg["false_per_hour"] == pytest.approx(1 / 0.1)
    assert agg["initiator_accuracy"] == pytest.approx(0.5)


def test_either_events_are_neither_hits_nor_false_and_must_nots_are_false():
    t = truth([(10, 12, "agent")], optional=[(20, 20.6, "customer")],
              short=[(30, 30.2, "agent")])
    # Found optional event: fine; report on a must-not: false; optional missed: no miss.
    s = score_call(t, report([(10, 11, "agent"), (20.1, 20.5, "customer"), (30, 30.4, "x")]))
    assert (s.tp, s.fp, s.fn, s.optional_matched) == (1, 1, 0, 1)
    assert (s.initiator_ok, s.initiator_n) == (2, 2)
    s = score_call(t, report([(10, 11, "agent")]))
    assert (s.tp, s.fp, s.fn, s.optional_matched) == (1, 0, 0, 0)


def test_a_split_alert_is_one_hit_and_one_false_and_must_events_win_a_shared_report():
    s = score_call(truth([(10, 14, "agent")]), report([(10, 11, "agent"), (12, 14, "agent")]))
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    # One report touching a must event and an optional one is the must event's hit.
    t = truth([(10, 12, "agent")], optional=[(12.3, 12.9, "agent")])
    s = score_call(t, report([(11, 12.5, "agent")]))
    assert (s.tp, s.fp, s.fn, s.optional_matched) == (1, 0, 0, 0)


def test_level_floor_and_speech_errors_and_noise_alerts():
    t = truth([], expected=True, snr=8.0)
    noise = ev("noise", "agent", 1, 9)
    s = score_call(t, report([], extra=[noise], level=-25.0, floor=-53.0, speech_s=11.0))
    assert s.level_errors == [1.0, 1.0]
    assert s.level_errors_snr20 == []  # SNR under 20 dB
    assert s.floor_errors == [3.0, 3.0]
    assert s.speech_errors == pytest.approx([0.1, 0.1])
    assert s.noise_fired
    quiet = truth([], expected=False)
    quiet["agent"]["noise_floor_dbfs"] = quiet["customer"]["noise_floor_dbfs"] = -70.0
    s = score_call(quiet, report([], level=-25.5, floor=-69.0))
    assert s.level_errors_snr20 == [0.5, 0.5]
    assert s.quiet_floor_errors == [1.0, 1.0] and s.floor_errors == []
    assert not s.noise_fired
    agg = aggregate([score_call(quiet, report([], extra=[ev("noise", "customer", 1, 9)]))])
    assert (agg["noise_false_alarms"], agg["quiet_room_calls"]) == (1, 1)


def test_mic_dead_and_dead_air():
    t = truth([], dead_air=[(50, 57)])
    t["activity"] = {"agent": [[6, 50], [57.0, 70]], "customer": [[74.9, 90]]}
    events = [ev("silence", None, 51, 57.3), ev("silence", None, 1, 6),
              ev("silence", None, 70, 74.9), ev("silence", None, 80, 86),
              ev("mic_dead", "agent", 0, 20)]
    s = score_call(t, report([], extra=events))
    # Over the dead air (0.3 s into speech: slack), at the start, over a 4.9 s gap: fine;
    # over the customer's speech: false.
    assert (s.dead_air_true, s.dead_air_hit, s.dead_air_false) == (1, 1, 1)
    assert s.mic_dead_false == 1
    t["mic_works"] = False
    assert score_call(t, report([], extra=events)).mic_dead_false == 0


def test_too_quiet_and_too_loud_by_party_with_a_tolerance_band():
    t = truth([], level=-45.0)
    t["agent"]["active_level_dbfs"] = -30.0
    events = [ev("too_quiet", "customer", 5, 50), ev("too_quiet", "agent", 5, 50)]
    agg = aggregate([score_call(t, report([], extra=events))])
    assert agg["too_quiet_expected"] == {"agent": 0, "customer": 1}
    assert agg["too_quiet_hits"] == {"agent": 0, "customer": 1}
    assert agg["too_quiet_false"] == 1
    t["agent"]["active_level_dbfs"] = -37.5  # within the tolerance: either answer is right
    assert score_call(t, report([], extra=events)).too_quiet_false == 0
    t["agent"]["speech_s"] = 3.0  # too little speech to judge
    assert score_call(t, report([], extra=events)).too_quiet_expected == {"customer": 1}
    loud = truth([], level=-20.0, clipped=["agent"])
    s = score_call(loud, report([], extra=[ev("too_loud", "customer", 1, 9)]))
    assert (s.too_loud_expected, s.too_loud_hit, s.too_loud_false) == (1, 0, 1)
