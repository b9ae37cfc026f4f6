"""Talk-over: the minimum overlap boundary, a call's first seconds, the vetting and reload."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dsp import FRAME_LEN
from dsp.activity import TalkSpurts
from dsp.detectors.talkover import (
    MERGE_FRAMES,
    ONSET_LAG_FRAMES,
    REVIVED_MIN_OVERLAP_FRAMES,
    VETO_VOICED_FRACTION,
    TalkOver,
)
from dsp.echo import ECHO_DECIDED_FAR_FRAMES, EchoEstimator
from dsp.events import Kind, Phase
from dsp.party import frames
from dsp.settings import DetectorSettings
from tests.speech import voiced

S = DetectorSettings()
LAGS = 15


def _echo(leak_db: float | None = None, far_frames: int = ECHO_DECIDED_FAR_FRAMES) -> EchoEstimator:
    """An echo estimator that has judged ``far_frames`` of far-end speech: a mic carrying it
    ``leak_db`` down and 3 frames late, or (None) a mic that does not."""
    est = EchoEstimator(LAGS)
    rng = np.random.default_rng(7)
    far = rng.uniform(-50, -20, far_frames + LAGS)
    lagged = np.stack([far[LAGS - d : LAGS - d + far_frames] for d in range(LAGS + 1)], axis=1)
    mic = rng.uniform(-75, -70, far_frames) if leak_db is None else lagged[:, 3] + leak_db
    est.add(mic, lagged)
    assert est.refresh() and est.present is (leak_db is not None)
    return est


def _run(overlap: int, settings: DetectorSettings = S, first: int = 200,
         clicks: bool = False, talkover: TalkOver | None = None,
         agent_frames: np.ndarray | None = None) -> list:
    """The agent talks from ``first`` for 200 frames; the customer cuts in 100 frames later
    and speaks ``overlap`` frames. Levels are uncorrelated noise so leak vetting passes; the
    agent's samples are ``agent_frames`` (by default a vowel-like periodic wave)."""
    det = talkover or TalkOver(settings, _echo())
    rng = np.random.default_rng(0)
    end = first + 400
    det.record(0, voiced(end) if agent_frames is None else agent_frames,
               rng.normal(-30, 5, end), rng.normal(-30, 5, end),
               np.full(end, clicks),
               np.full(end, not clicks))
    a, c = TalkSpurts(1, 15), TalkSpurts(1, 15)
    events = []
    for i in range(first, end):
        a_sp = first <= i < first + 200
        c_sp = first + 100 <= i < first + 100 + overlap
        a.step(i, a_sp)
        c.step(i, c_sp)
        if (a.active and c.active) or det.in_overlap:
            events += det.step(i, a, c, a_sp, c_sp)
    return events + det.close(end, a, c)


def test_overlap_of_exactly_min_overlap_is_reported_one_frame_under_is_not():
    n = frames(S.min_overlap_s)
    events = _run(n)
    assert [(e.kind, e.phase) for e in events] == [(Kind.TALK_OVER, Phase.BEGIN),
                                                    (Kind.TALK_OVER, Phase.END)]
    assert events[0].data["initiator"] == "customer"
    assert _run(n - 1) == []


@pytest.mark.parametrize(("soft", "episodes"), [(False, 2), (True, 1)])
def test_an_overlap_whose_soft_middle_the_gate_missed_is_one_talk_over(soft, episodes):
    """The customer talks throughout; the agent talks over them, but the gate hears only two
    weak frames of the agent's quieter middle (1.2 s: their spurt and activity run end, and
    the loud part after it starts a new run). Where both stayed audible to the speech
    time's softer measure, the episode lives on: one talk-over, not a second one "started"
    by the agent's new run. Where the agent really was quiet, two."""
    det = TalkOver(S, _echo())
    rng = np.random.default_rng(2)
    end = 800
    det.record(0, voiced(end), rng.normal(-30, 5, end), rng.normal(-30, 5, end),
               np.zeros(end, bool), np.ones(end, bool))
    a, c = TalkSpurts(1, 15), TalkSpurts(1, 15)
    events = []
    for i in range(100, end):
        loud = 200 <= i < 300 or 360 <= i < 500
        a_sp = loud or i in (320, 335)            # the gate's only frames of the middle
        c_sp = 150 <= i < 600
        a.step(i, a_sp, loud)
        c.step(i, c_sp)
        a_aud = a_sp or (soft and 300 <= i < 360)
        if (a.active and c.active) or det.in_overlap:
            events += det.step(i, a, c, a_sp, c_sp, a_aud, c_sp)
    events += det.close(end, a, c)
    ends = [e for e in events if e.phase is Phase.END]
    assert len(ends) == episodes, events
    assert ends[0].start == 200 * FRAME_LEN and ends[0].data["initiator"] == "agent"
    if soft:
        assert ends[0].end == 500 * FRAME_LEN


def test_a_talk_over_in_the_first_seconds_is_reported():
    events = _run(60, first=0)
    assert [e.phase for e in events] == [Phase.BEGIN, Phase.END]
    assert events[0].start == 100 * FRAME_LEN  # samples


def test_typing_is_vetted():
    assert _run(60, clicks=True) == []


def _step(det: TalkOver, agent: np.ndarray, customer: np.ndarray, first: int) -> list:
    """Both parties' spurts stepped from frame ``first`` on their speech masks, ``det`` fed
    as the pipeline feeds it; its events, closed at the masks' end."""
    a, c = TalkSpurts(1, 15), TalkSpurts(1, 15)
    events = []
    for i in range(first, len(agent)):
        a_sp, c_sp = bool(agent[i]), bool(customer[i])
        a.step(i, a_sp)
        c.step(i, c_sp)
        if (a.active and c.active) or det.in_overlap:
            events += det.step(i, a, c, a_sp, c_sp)
    return events + det.close(len(agent), a, c)


def _typing_then_speaking(customer_end: int) -> list:
    """The customer talks from 200 to ``customer_end``; the agent types from 250 (clicks the
    spurt takes for speech), then speaks from 300 to 420. The episode opens on the typing and
    is vetoed; the speech that follows is judged again."""
    det = TalkOver(S, _echo())
    rng = np.random.default_rng(1)
    end = 600
    frame = np.arange(end)
    typing = (frame >= 250) & (frame < 300)
    det.record(0, voiced(end), rng.normal(-30, 5, end), rng.normal(-30, 5, end), typing,
               (frame >= 300) & (frame < 420))
    return _step(det, (frame >= 250) & (frame < 420), (frame >= 200) & (frame < customer_end),
                 200)


def test_typing_then_talking_over_the_customer_is_a_talk_over_from_the_first_word():
    # Reported from the agent's first strong frame.
    events = _typing_then_speaking(500)
    assert [e.phase for e in events] == [Phase.BEGIN, Phase.END]
    assert events[0].start == 300 * FRAME_LEN and events[0].data["initiator"] == "agent"
    assert events[1].end == 420 * FRAME_LEN


@pytest.mark.parametrize(("customer_end", "reported"),
                         [(300 + REVIVED_MIN_OVERLAP_FRAMES, True),
                          (299 + REVIVED_MIN_OVERLAP_FRAMES, False)])
def test_typing_then_answering_as_the_customer_finishes_is_no_talk_over(customer_end,
                                                                        reported):
    # The customer stops soon after the agent's voice begins at 300: heard together for
    # 0.3 s, the agent talks over them; one frame less, they took the turn.
    events = _typing_then_speaking(customer_end)
    assert bool(events) is reported, events
    if reported:
        assert events[0].start == 300 * FRAME_LEN and events[0].data["initiator"] == "agent"


def _leak_and_voice(room_dbfs: float = -58.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame levels of a far end talking with gaps, of its leak into a mic 24 dB down and 3
    frames late over a room that swings by 5 dB, and of an agent's own voice over that."""
    rng = np.random.default_rng(5)
    n = 60
    far = np.where(rng.random(n) < 0.7, rng.normal(-28, 4, n), rng.normal(-60, 3, n))
    late = np.concatenate([np.full(3, -60.0), far[:-3]])
    leak = 10 * np.log10(10 ** ((late - 24) / 10) + 10 ** (rng.normal(room_dbfs, 5, n) / 10))
    voice = np.where(rng.random(n) < 0.6, rng.normal(-30, 5, n), rng.normal(-50, 4, n))
    own = 10 * np.log10(10 ** (voice / 10) + 10 ** (leak / 10))
    return far, leak, own


def test_leak_that_follows_the_far_end_loosely_but_steadily_is_not_a_voice():
    far, leak, own = _leak_and_voice()
    assert np.corrcoef(leak[3:], far[:-3])[0, 1] < 0.8       # under the plain correlation veto
    for agent, is_leak in ((leak, True), (own, False)):
        det = TalkOver(S, EchoEstimator(frames(S.echo_max_delay_ms / 1000)))
        det.record(0, voiced(60), agent, far, np.zeros(60, bool), np.ones(60, bool))
        assert det._not_a_voice(0, 60) is is_leak


def test_reload_changes_the_minimum_overlap():
    longer = dataclasses.replace(S, min_overlap_s=2.0)
    det = TalkOver(S, _echo())
    det.configure(longer, _echo())
    assert _run(frames(1.5), talkover=det) == []
    assert _run(frames(2.0), longer) != []


def test_counts_by_initiator_and_call():
    det = TalkOver(S, _echo())
    _run(60, talkover=det)
    assert det.counts[0][0] == det.counts[1][0] == 1 and det.counts[0][3] == 1
    det.start_call()
    assert det.counts[0] == [0] * 6 and det.counts[1][0] == 1


def _held_run(echo: EchoEstimator, agent_levels: np.ndarray, far_levels: np.ndarray,
              decided_at: int | None, echo_then: EchoEstimator | None = None) -> list:
    """The agent talks from 0, the customer cuts in at 100 for 60 frames; the echo estimator
    has no estimate until frame ``decided_at``, when ``echo_then`` takes its place."""
    det = TalkOver(S, echo)
    det.record(0, voiced(400), agent_levels, far_levels, np.zeros(400, bool), np.ones(400, bool))
    a, c = TalkSpurts(1, 15), TalkSpurts(1, 15)
    events = []
    for i in range(400):
        if i == decided_at:
            det.configure(S, echo_then)
        a_sp, c_sp = i < 200, 100 <= i < 160
        a.step(i, a_sp)
        c.step(i, c_sp)
        if (a.active and c.active) or det.in_overlap:
            events += [(i, e) for e in det.step(i, a, c, a_sp, c_sp)]
    return events + [(400, e) for e in det.close(400, a, c)]


def test_a_talk_over_before_the_first_echo_estimate_waits_for_it():
    rng = np.random.default_rng(2)
    agent, far = rng.normal(-30, 5, 400), rng.normal(-30, 5, 400)
    over = 160 + MERGE_FRAMES + ONSET_LAG_FRAMES  # when the episode is known to be over
    # No leak: reported once the estimate is made, dated from its start.
    events = _held_run(EchoEstimator(LAGS), agent, far, 150, _echo())
    assert [(i, e.phase) for i, e in events] == [(150, Phase.BEGIN), (over, Phase.END)]
    assert events[0][1].start == 100 * FRAME_LEN
    # Over before any estimate: reported as it ends.
    events = _held_run(EchoEstimator(LAGS), agent, far, None)
    assert [(i, e.phase) for i, e in events] == [(over, Phase.BEGIN), (over, Phase.END)]
    # The same while the estimator has seen too little far-end speech to rule a leak out.
    early = _echo(far_frames=ECHO_DECIDED_FAR_FRAMES // 2)
    events = _held_run(early, agent, far, 150, _echo())
    assert [(i, e.phase) for i, e in events] == [(150, Phase.BEGIN), (over, Phase.END)]


def test_a_held_talk_over_the_leak_explains_is_not_reported():
    rng = np.random.default_rng(3)
    far = rng.normal(-30, 5, 400)
    leak = np.concatenate([np.full(3, -75.0), far[:-3]]) - 20.0
    assert _held_run(EchoEstimator(LAGS), leak, far, 150, _echo(-20.0)) == []
    # The agent's own voice over the same leak is a talk-over.
    voice = np.maximum(leak, rng.normal(-22, 3, 400))
    events = _held_run(EchoEstimator(LAGS), voice, far, 150, _echo(-20.0))
    assert [e.phase for _, e in events] == [Phase.BEGIN, Phase.END]



def test_a_voice_vetoed_as_typing_then_revived_keeps_the_customer_as_initiator():
    # The agent talks from 200; the customer cuts in at 300. A quarter of the agent's frames
    # from 300 to 360 look like clicks (plosives), so the episode is vetoed as typing and
    # revived once they thin out. The agent had been talking for 2 s: the customer started it.
    det = TalkOver(S, _echo())
    rng = np.random.default_rng(2)
    end = 600
    frame = np.arange(end)
    clicks = (frame >= 300) & (frame < 360) & (frame % 4 == 0)
    speaking = (frame >= 200) & (frame < 500)
    det.record(0, voiced(end), rng.normal(-30, 5, end), rng.normal(-30, 5, end), clicks,
               speaking & ~clicks)
    events = _step(det, speaking, (frame >= 300) & (frame < 450), 200)
    assert [e.phase for e in events] == [Phase.BEGIN, Phase.END]
    assert events[0].start > 300 * FRAME_LEN  # revived, not reported at once
    assert events[0].data["initiator"] == "customer"


def _bursts(n: int, seed: int = 3) -> np.ndarray:
    """``n`` frames of noise bursts: a cough's or a crunch's samples, no pitch in them."""
    return np.random.default_rng(seed).normal(0, 0.05, (n, FRAME_LEN)).astype(np.float32)


def test_unvoiced_bursts_under_the_customer_are_no_talk_over():
    """A coughing fit or crisps crunched next to the mic while the customer talks: the VAD
    flags the bursts and they stand out of a quiet room, but none of the frames is voiced."""
    n = frames(S.min_overlap_s)
    assert len(_run(n + 20, agent_frames=voiced(600))) == 2  # BEGIN and END
    assert _run(n + 20, agent_frames=_bursts(600)) == []


@pytest.mark.parametrize("voiced_frames", [18, 17])
def test_the_voiced_share_of_the_agents_strong_frames_decides(voiced_frames):
    """At :data:`VETO_VOICED_FRACTION` of the strong frames voiced, a voice; one fewer, not."""
    assert VETO_VOICED_FRACTION * 60 == 18
    det = TalkOver(S, _echo())
    rng = np.random.default_rng(5)
    samples = np.concatenate([voiced(voiced_frames), _bursts(60 - voiced_frames)])
    det.record(0, samples, rng.normal(-30, 5, 60), rng.normal(-30, 5, 60),
               np.zeros(60, bool), np.ones(60, bool))
    assert det._not_a_voice(0, 60) is (voiced_frames < 18)
