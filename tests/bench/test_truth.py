"""The §4.4 truth: activity within 30 dB of the P.56 level with short gaps filled, talk-overs
merged across < 0.5 s and classed by span, the initiator, and dead air."""

from __future__ import annotations

import numpy as np
import pytest

from bench.truth import activity, classify, derive, fill_gaps, quiet_stretches, talk_overs

RATE = 8000


def tone(spans, total_s, amp=0.1, rate=RATE):
    """A 300 Hz tone switched on over ``spans`` (seconds): a stand-in for clean speech."""
    x = np.zeros(int(total_s * rate))
    t = np.arange(len(x)) / rate
    for a, b in spans:
        i, j = int(a * rate), int(b * rate)
        x[i:j] = amp * np.sin(2 * np.pi * 300 * t[i:j])
    return x


def mask(spans, total_s):
    m = np.zeros(int(total_s * 100), dtype=bool)
    for a, b in spans:
        m[round(a * 100) : round(b * 100)] = True
    return m


def test_fill_gaps_fills_only_inner_gaps_shorter_than_the_limit():
    m = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
    assert fill_gaps(m, 3).astype(int).tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0]


def test_activity_is_within_30_db_of_the_level_and_bridges_short_pauses():
    x = tone([(1.0, 2.0), (2.15, 3.0), (3.5, 4.0)], 5.0)
    x[int(4.5 * RATE) : int(4.8 * RATE)] = 0.1 * 10 ** (-35 / 20)  # 35 dB down: not speech
    m = activity(x, RATE, -23.0)
    on = np.flatnonzero(np.diff(np.concatenate([[0], m.astype(int), [0]])))
    assert (on / 100).tolist() == [1.0, 3.0, 3.5, 4.0]
    assert not activity(x, RATE, None).any()


def test_talk_overs_merge_fragments_and_take_the_later_starter_as_initiator():
    a = mask([(0, 5)], 20)
    c = mask([(4.0, 4.3), (4.7, 6.0)], 20)  # two fragments 0.4 s apart: one event
    (e,) = talk_overs({"agent": a, "customer": c})
    assert (e["start_s"], e["end_s"], e["initiator"], e["class"]) == (4.0, 5.0, "customer",
                                                                       "must")
    assert e["overlap_s"] == pytest.approx(0.6)
    c = mask([(4.0, 4.3), (4.8, 6.0)], 20)  # 0.5 s apart: two events
    ev = talk_overs({"agent": a, "customer": c})
    assert [(x["class"], x["initiator"]) for x in ev] == [("either", "customer"),
                                                           ("must_not", "customer")]
    # The agent starts later inside the customer's run: the agent cut in.
    (e,) = talk_overs({"agent": mask([(2, 8)], 20), "customer": mask([(1, 3)], 20)})
    assert e["initiator"] == "agent"


def test_classes_at_their_bounds():
    assert [classify(s) for s in (0.29, 0.3, 0.99, 1.0)] == ["must_not", "either", "either",
                                                             "must"]


def test_dead_air_inside_and_at_the_edges():
    a = mask([(6, 10), (20, 22)], 30)
    c = mask([(10, 12)], 30)
    q = quiet_stretches({"agent": a, "customer": c})
    assert [(x["start_s"], x["end_s"], x["inside"]) for x in q] == [
        (0.0, 6.0, False), (12.0, 20.0, True), (22.0, 30.0, False)]


def test_derive_measures_the_clean_signals():
    agent = tone([(0.5, 3.0)], 10.0, amp=0.05)
    customer = tone([(2.0, 4.0), (9.5, 10.0)], 10.0, amp=0.2)
    t = derive({"agent": agent, "customer": customer}, RATE)
    # P.56 counts its 0.2 s hangover as active: a little under the tone's -29.0 dBFS RMS.
    assert t["parties"]["agent"]["active_level_dbfs"] == pytest.approx(-29.0, abs=0.6)
    assert t["parties"]["agent"]["speech_s"] == pytest.approx(2.5, abs=0.02)
    assert t["parties"]["customer"]["speech_s"] == pytest.approx(2.5, abs=0.02)
    (e,) = t["talk_overs"]
    assert (e["start_s"], e["end_s"], e["initiator"]) == (2.0, 3.0, "customer")
    assert t["dead_air"] == [{"start_s": 4.0, "end_s": 9.5}]
    assert t["activity"]["customer"] == [[2.0, 4.0], [9.5, 10.0]]
