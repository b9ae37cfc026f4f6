"""Dead mic: the ``mic_dead_min_s`` boundary, the far-end requirement, what counts as dead
(digital silence, no variance, under the threshold, under the room once heard) and reload."""

from __future__ import annotations

import dataclasses

import numpy as np

from dsp.detectors.dead_mic import DeadMic
from dsp.events import Kind, Phase
from dsp.party import SEGMENT_FRAMES, segments
from dsp.settings import DetectorSettings

S = DetectorSettings()


def _run(det: DeadMic, n_segments: int, far: int = SEGMENT_FRAMES, first: int = 0) -> list:
    out = []
    for k in range(first, first + n_segments):
        det.add(np.full(SEGMENT_FRAMES, -100.0), far)
        out += det.judge(k * SEGMENT_FRAMES, (k + 1) * SEGMENT_FRAMES)
    return out


def test_dead_for_exactly_mic_dead_min_is_reported_one_segment_under_is_not():
    n = segments(S.mic_dead_min_s)
    assert _run(DeadMic(S), n - 1) == []
    (begin,) = _run(DeadMic(S), n)
    assert begin.kind is Kind.MIC_DEAD and begin.phase is Phase.BEGIN and begin.start == 0


def test_not_while_the_far_end_is_silent():
    assert _run(DeadMic(S), 2 * segments(S.mic_dead_min_s), far=0) == []


def test_ends_when_the_mic_comes_alive():
    det = DeadMic(S)
    _run(det, segments(S.mic_dead_min_s))
    det.add(np.random.default_rng(5).normal(-30.0, 3.0, SEGMENT_FRAMES), 0)
    (end,) = det.judge(500, 550)
    assert end.phase is Phase.END and end.end == 500 * 320


def test_reload_takes_the_new_duration():
    det = DeadMic(S)
    det.configure(dataclasses.replace(S, mic_dead_min_s=4.0))
    assert len(_run(det, 4)) == 1


def _segment(det: DeadMic, k: int, levels: np.ndarray, far: int = SEGMENT_FRAMES) -> list:
    det.add(levels, far)
    return det.judge(k * SEGMENT_FRAMES, (k + 1) * SEGMENT_FRAMES)


def test_a_quiet_room_is_not_a_dead_mic_once_the_agent_was_heard():
    rng = np.random.default_rng(3)
    det = DeadMic(S)
    det.heard(-74.0)  # the agent spoke over a -74 dBFS room
    out = []
    for k in range(3 * segments(S.mic_dead_min_s)):
        out += _segment(det, k, rng.normal(-74.0, 0.5, SEGMENT_FRAMES))
    assert out == []
    # Ten dB under that room is not a working mic any more.
    for k in range(segments(S.mic_dead_min_s)):
        out += _segment(det, 100 + k, rng.normal(-86.0, 0.5, SEGMENT_FRAMES))
    assert [e.phase for e in out] == [Phase.BEGIN]


def test_digital_silence_or_a_constant_level_is_dead_whatever_the_level():
    for level in (-120.0, -40.0):
        det = DeadMic(S)
        det.heard(-120.0)
        out = []
        for k in range(segments(S.mic_dead_min_s)):
            out += _segment(det, k, np.full(SEGMENT_FRAMES, level))
        assert [e.phase for e in out] == [Phase.BEGIN], level


def test_before_the_agent_is_heard_ten_db_under_the_threshold_is_dead_a_quiet_room_is_not():
    """An agent listening in a -74 dBFS room while the customer explains: under the threshold,
    but a working mic. Ten dB under the threshold, nothing but a broken input sits there."""
    rng = np.random.default_rng(4)
    det = DeadMic(S)
    out = []
    for k in range(3 * segments(S.mic_dead_min_s)):
        out += _segment(det, k, rng.normal(S.mic_dead_dbfs - 4.0, 0.5, SEGMENT_FRAMES))
    assert out == []
    det = DeadMic(S)
    for k in range(segments(S.mic_dead_min_s)):
        out += _segment(det, k, rng.normal(S.mic_dead_dbfs - 12.0, 0.5, SEGMENT_FRAMES))
    assert [e.phase for e in out] == [Phase.BEGIN]
