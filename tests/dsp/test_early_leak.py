"""The agent's speech time while the echo estimator is undecided: held from the customer's
first spurt, the leak's frames dropped once it decides, bounded when it never does."""

from __future__ import annotations

import numpy as np

from dsp.activity import SpurtChange
from dsp.early_leak import HOLD_MAX_FRAMES, EarlyLeakHold, HoldState
from dsp.echo import ECHO_DECIDED_FAR_FRAMES, EchoEstimator
from dsp.speech_time import DELAY_FRAMES, EDGE_FRAMES, SpeechTime

LAGS = 15


def _echo(leak_db: float | None) -> EchoEstimator:
    """An estimator that has decided: a mic carrying the far end ``leak_db`` down, 3 frames
    late, or (None) one that does not."""
    est = EchoEstimator(LAGS)
    n = ECHO_DECIDED_FAR_FRAMES
    far = np.random.default_rng(7).uniform(-50, -20, n + LAGS)
    lagged = np.stack([far[LAGS - d : LAGS - d + n] for d in range(LAGS + 1)], axis=1)
    mic = np.full(n, -75.0) if leak_db is None else lagged[:, 3] + leak_db
    est.add(mic, lagged)
    assert est.refresh() and not est.undecided and est.present is (leak_db is not None)
    return est


def _feed(hold: EarlyLeakHold, st: SpeechTime, i0: int, n: int, agent_db: float,
          far_db: float, start: tuple[int, int] | None = None) -> None:
    """``n`` frames at steady levels, every one audible; ``start``: the customer's spurt
    (confirmed at, started at) among them."""
    audible = np.ones(n, bool)
    changes = [] if start is None else [(start[0], SpurtChange.START, start[1], 0, False)]
    hold.feed(i0, audible, np.full(n, agent_db), np.full((n, LAGS + 1), far_db), changes, st)
    st.block(i0, audible, np.ones(n, bool), [])


def test_only_the_last_frames_are_kept_until_the_customer_talks():
    hold, st = EarlyLeakHold(), SpeechTime()
    for i0 in range(0, 2000, 50):
        _feed(hold, st, i0, 50, -40.0, -80.0)
    assert hold.state is HoldState.WATCHING
    assert sum(len(d) for d in hold._db) <= DELAY_FRAMES + 50
    assert st.undecided_from == 2000 - DELAY_FRAMES


def test_held_from_the_customers_start_and_the_leak_dropped_once_found():
    hold, st = EarlyLeakHold(), SpeechTime()
    _feed(hold, st, 0, 100, -80.0, -80.0)
    # The customer starts at 110 (confirmed at 115); the mic carries them 20 dB down.
    _feed(hold, st, 100, 100, -45.0, -25.0, start=(115, 110))
    assert hold.state is HoldState.HOLDING
    held_from = 110 - EDGE_FRAMES
    _feed(hold, st, 200, 100, -45.0, -25.0)
    assert st.undecided_from == held_from
    hold.judge(300, _echo(-20.0), st)
    assert hold.state is HoldState.DONE and hold._db == []
    st.flush(300)
    assert st.frames[1] == 100  # the frames before the far end talked count, the leak not


def test_an_agent_standing_over_the_leak_keeps_the_held_frames():
    hold, st = EarlyLeakHold(), SpeechTime()
    _feed(hold, st, 0, 100, -80.0, -80.0, start=(20, 15))
    _feed(hold, st, 100, 100, -20.0, -25.0)  # 15 dB over a -20 dB leak: the agent's voice
    hold.judge(200, _echo(-20.0), st)
    st.flush(200)
    assert st.frames[1] == 200


def test_a_hold_the_estimator_never_decides_ends_with_nothing_dropped():
    hold, st = EarlyLeakHold(), SpeechTime()
    undecided = EchoEstimator(LAGS)
    _feed(hold, st, 0, 50, -45.0, -25.0, start=(10, 5))
    i = 50
    while hold.state is HoldState.HOLDING:
        _feed(hold, st, i, 50, -45.0, -25.0)
        i += 50
        hold.judge(i, undecided, st)
    assert i - 0 >= HOLD_MAX_FRAMES and i <= HOLD_MAX_FRAMES + 100
    st.flush(i)
    assert st.frames[1] == i
