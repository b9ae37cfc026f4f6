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
        block: int = 7) -> tuple[SpeechTime, list[int]]:
    """Step spurts frame by frame, feed :class:`SpeechTime` in blocks; returns the lifetime
    count after every block."""
    sp = TalkSpurts(3, 15)
    st = SpeechTime()
    strong = speech if strong is None else strong
    seen = []
    for i0 in range(0, len(speech), block):
        n = min(block, len(speech) - i0)
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
