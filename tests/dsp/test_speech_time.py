"""Speech time as the accuracy definitions count it: audible frames near a spurt, pauses under
0.2 s joined; soft starts and ends counted, a cut spurt's take-over not; final counts only
grow and do not depend on the block size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dsp.activity import SpurtChange, TalkSpurts
from dsp.speech_time import DELAY_FRAMES, EDGE_FRAMES, SpeechTime, change


def run(speech: np.ndarray, audible: np.ndarray, strong: np.ndarray | None = None,
        block: int = 7, heard: list[int] | None = None, call_at: int | None = None
        ) -> tuple[SpeechTime, list[int]]:
    """Step spurts frame by frame, feed :class:`SpeechTime` in blocks (``heard``: silero's
    verdicts, given ahead of each block as the pipeline does; ``call_at``: a call starts);
    returns the lifetime count after every block."""
    sp = TalkSpurts(3, 15)
    st = SpeechTime()
    strong = speech if strong is None else strong
    seen = []
    for i0 in range(0, len(speech), block):
        n = min(block, len(speech) - i0)
        if heard is not None:
            st.heard(i0, heard[i0:i0 + n])
        if call_at is not None and i0 <= call_at < i0 + n:
            st.start_call(call_at)
        active = np.zeros(n, dtype=bool)
        changes = []
        for k in range(n):
            ch = sp.step(i0 + k, bool(speech[i0 + k]), bool(strong[i0 + k]))
            if ch is not SpurtChange.NONE:
                changes.append(change(i0 + k, ch, sp))
            active[k] = sp.active
        st.block(i0, audible[i0:i0 + n], active, changes)
        seen.append(st.so_far(1))
    st.flush(len(speech))
    seen.append(st.so_far(1))
    return st, seen


def test_soft_start_and_end_of_a_spurt_count_the_hangover_does_not():
    n = 300
    speech = np.zeros(n, bool)
    speech[100:150] = True
    audible = speech.copy()
    audible[90:100] = True      # a breathy onset, under the speech gate
    audible[150:155] = True     # a trailing syllable
    st, _ = run(speech, audible)
    assert st.frames[1] == 10 + 50 + 5


def test_audible_frames_far_from_any_spurt_do_not_count():
    n = 400
    speech = np.zeros(n, bool)
    speech[100:150] = True
    audible = speech.copy()
    audible[150 + EDGE_FRAMES + 30: 150 + EDGE_FRAMES + 60] = True  # a door, a colleague
    audible[10:40] = True
    st, _ = run(speech, audible)
    assert st.frames[1] == 50


def test_pauses_under_two_tenths_of_a_second_are_joined():
    n = 300
    speech = np.zeros(n, bool)
    speech[100:130] = True
    speech[139:170] = True      # a 9-frame (0.18 s) pause
    st, _ = run(speech, speech.copy())
    assert st.frames[1] == 70


def test_a_cut_spurt_keeps_nothing_after_its_cut():
    """Another voice takes over without a pause: weak frames for 0.6 s and more; the spurt is
    cut 0.2 s after its last loud frame and the rest is not the party's speech."""
    n = 400
    speech = np.zeros(n, bool)
    speech[100:250] = True
    strong = speech.copy()
    strong[150:250] = False     # from frame 150 on only weak speech (another voice)
    st, _ = run(speech, speech.copy(), strong)
    assert st.frames[1] == 50 + 10  # up to the last loud frame and its 0.2 s tail


@pytest.mark.parametrize("seed", range(10))
def test_the_lifetime_count_only_grows_and_does_not_depend_on_the_block_size(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    speech = rng.random(n) < 0.6
    audible = speech | (rng.random(n) < 0.3)
    strong = speech & (rng.random(n) < 0.5)
    totals = []
    for block in (1, 7, 50, DELAY_FRAMES + 3, n):
        st, seen = run(speech, audible, strong, block)
        assert all(b >= a for a, b in itertools.pairwise(seen))
        totals.append(st.frames[1])
    assert len(set(totals)) == 1, totals


def test_a_call_counts_only_its_own_frames_and_its_pending_ones():
    n = 300
    speech = np.zeros(n, bool)
    speech[50:100] = True
    speech[200:260] = True
    sp, st = TalkSpurts(3, 15), SpeechTime()
    for i in range(n):
        if i == 150:
            st.start_call(150)
        ch = sp.step(i, bool(speech[i]))
        st.block(i, speech[i:i + 1], np.array([sp.active]),
                 [change(i, ch, sp)] if ch is not SpurtChange.NONE else [])
    assert st.so_far(0) == 60          # the undecided frames of the call count already
    assert st.so_far(1) < 110          # the lifetime counter waits for them
    st.flush(n)
    assert st.frames == [60, 110]


def _fed(n: int, speech: np.ndarray, st: SpeechTime, hold_at: int | None = None,
         block: int = 7) -> None:
    """Feed ``st`` like :func:`run`, calling ``hold(hold_at)`` once frame ``hold_at`` is fed."""
    sp = TalkSpurts(3, 15)
    for i0 in range(0, n, block):
        k = min(block, n - i0)
        active = np.zeros(k, dtype=bool)
        changes = []
        for j in range(k):
            ch = sp.step(i0 + j, bool(speech[i0 + j]), True)
            if ch is not SpurtChange.NONE:
                changes.append(change(i0 + j, ch, sp))
            active[j] = sp.active
        if hold_at is not None and i0 <= hold_at < i0 + k:
            st.hold(hold_at)
        st.block(i0, speech[i0:i0 + k], active, changes)


def test_held_frames_wait_for_their_release_and_dropped_ones_do_not_count():
    n = 400
    speech = np.zeros(n, bool)
    speech[100:150] = True   # held, then found to be leak
    speech[200:240] = True   # held, kept
    st = SpeechTime()
    _fed(n, speech, st, hold_at=90)
    assert st.frames[1] == 0 and st.undecided_from == 90  # nothing from 90 on decided
    assert st.so_far(0) == 50 + 40  # a call's summary counts the held frames as they stand
    drop = np.zeros(n - 90, bool)
    drop[100 - 90 : 150 - 90] = True
    st.release(90, drop)
    assert st.frames[1] == 40  # decided up to DELAY_FRAMES before the end
    assert st.undecided_from == n - DELAY_FRAMES
    st.flush(n)
    assert st.frames[1] == 40


def test_a_release_that_drops_nothing_counts_what_an_unheld_count_does():
    n = 500
    rng = np.random.default_rng(3)
    speech = rng.random(n) < 0.5
    plain, held = SpeechTime(), SpeechTime()
    _fed(n, speech, plain)
    _fed(n, speech, held, hold_at=40)
    held.release(40)
    plain.flush(n)
    held.flush(n)
    assert held.frames == plain.frames


def test_flush_decides_held_frames_and_a_decided_frame_cannot_be_held():
    n = 300
    speech = np.zeros(n, bool)
    speech[50:90] = True
    st = SpeechTime()
    _fed(n, speech, st, hold_at=20)
    st.flush(n)
    assert st.frames[1] == 40
    with pytest.raises(ValueError, match="decided already"):
        st.hold(10)
