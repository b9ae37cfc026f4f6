"""Clipping: the ratio boundary, resolve and reload."""

from __future__ import annotations

import dataclasses

from dsp import FRAME_LEN
from dsp.detectors.clipping import Clipping
from dsp.events import Kind, Phase, Stream
from dsp.party import SEGMENT_FRAMES
from dsp.settings import DetectorSettings

S = DetectorSettings()
LIMIT = int(S.clipping_min_ratio * SEGMENT_FRAMES * FRAME_LEN)


def test_more_than_the_ratio_is_reported_the_ratio_itself_is_not():
    assert Clipping(Stream.AGENT, S).judge(0, 50, LIMIT) == []
    (begin,) = Clipping(Stream.AGENT, S).judge(0, 50, LIMIT + 1)
    assert begin.kind is Kind.CLIPPING and begin.phase is Phase.BEGIN


def test_resolves_on_a_clean_segment_and_closes():
    det = Clipping(Stream.CUSTOMER, S)
    det.judge(0, 50, 1000)
    assert det.judge(50, 100, 3) == []  # a little clipping holds it
    (end,) = det.judge(100, 150, 0)
    assert end.phase is Phase.END and end.stream is Stream.CUSTOMER
    det.judge(150, 200, 1000)
    assert [e.phase for e in det.close(210)] == [Phase.END]


def test_the_end_reports_the_worst_segment_and_small_ratios_survive_the_report():
    det = Clipping(Stream.AGENT, S)
    (begin,) = det.judge(0, 50, LIMIT + 1)
    det.judge(50, 100, 4 * LIMIT)      # worse
    det.judge(100, 150, LIMIT + 2)
    (end,) = det.close(160)
    assert end.data["worst_clipped_ratio"] == 4 * LIMIT / (SEGMENT_FRAMES * FRAME_LEN)
    assert begin.data["clipped_ratio"] < end.data["worst_clipped_ratio"]
    report = end.to_json()                  # two decimals would print 0.001 as 0.0
    assert report["threshold_ratio"] == S.clipping_min_ratio == 0.001
    assert report["worst_clipped_ratio"] == 0.004


def test_reload_changes_the_ratio():
    det = Clipping(Stream.AGENT, S)
    det.configure(dataclasses.replace(S, clipping_min_ratio=0.01))
    assert det.judge(0, 50, LIMIT + 1) == []
