"""silero's view of speech time in noise: which frames the gates counted stay, which silero
adds, when the background counts as not speech-like, and that the count does not depend on
how the frames are fed."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.heard_speech import (
    CONFIRM_FRAMES,
    FAR_FRAMES,
    JOIN_FRAMES,
    NEAR_FRAMES,
    QUIET_MIN_FRAMES,
    QUIET_SHARE,
    TALLY_FRAMES,
    UNCHECKED,
    BackgroundTally,
    HeardFrames,
    refine,
)
from dsp.vad import to_pcm16
from tests.dsp.test_speech_time import run
from tests.speech import voice


def quiet_tally() -> BackgroundTally:
    tally = BackgroundTally()
    for _ in range(QUIET_MIN_FRAMES):
        tally.add(0)
    assert tally.quiet()
    return tally


def speechlike_tally() -> BackgroundTally:
    tally = BackgroundTally()
    for _ in range(QUIET_MIN_FRAMES):
        tally.add(1)
    assert not tally.quiet()
    return tally


def test_unchecked_frames_are_the_gates_alone():
    counted = [False] * 20 + [True] * 10 + [False] * 20
    assert refine(counted, [UNCHECKED] * 50, 0, 50, quiet_tally()) == counted


@pytest.mark.parametrize(("tally", "reach"), [(speechlike_tally, CONFIRM_FRAMES),
                                              (quiet_tally, JOIN_FRAMES)])
@pytest.mark.parametrize("beyond", [0, 1])
def test_a_counted_frame_needs_silero_close_by(tally, reach, beyond):
    """In a background silero takes for speech (babble) within :data:`CONFIRM_FRAMES`; in
    one it does not (a fan, a train), where it also adds words, within :data:`JOIN_FRAMES`."""
    counted = [False] * 40
    counted[20] = True
    heard = [0] * 40
    heard[20 + reach + beyond] = 1
    assert refine(counted, heard, 20, 21, tally()) == [not beyond]


def test_in_a_speechlike_background_silero_adds_nothing():
    heard = [1] * 40
    heard[20] = 0
    counted = [False] * 40
    counted[20] = True
    assert refine(counted, heard, 0, 40, speechlike_tally()) == counted


@pytest.mark.parametrize(("gap", "added"), [(NEAR_FRAMES, True), (NEAR_FRAMES + 1, False)])
def test_in_a_quiet_background_silero_adds_words_near_the_counted_ones(gap, added):
    counted = [False] * 60
    counted[10] = True
    heard = [0] * 60
    heard[10 + gap] = 1
    heard[10] = 1
    out = refine(counted, heard, 0, 60, quiet_tally())
    assert out[10] and out[10 + gap] is added
    assert sum(out[11:]) == added


def test_the_background_is_frames_far_from_counted_ones_and_its_share_decides():
    counted = [False] * 100
    counted[50] = True
    tally = BackgroundTally()
    refine(counted, [1] * 100, 0, 100, tally)
    assert tally.frames == 100 - (2 * FAR_FRAMES + 1) and tally.heard == tally.frames
    tally = BackgroundTally()
    share = int(QUIET_SHARE * QUIET_MIN_FRAMES)
    for k in range(QUIET_MIN_FRAMES - 1):
        tally.add(1 if k < share else 0)
    assert not tally.quiet()  # too few frames yet
    tally.add(0)
    assert not tally.quiet()  # exactly the share: speech-like
    tally.add(0)
    assert tally.quiet()


def test_the_share_forgets_the_start_of_the_call():
    """Words the gates missed before the party's level was known weigh only for a while."""
    tally = BackgroundTally()
    for _ in range(QUIET_MIN_FRAMES):
        tally.add(1)
    for _ in range(TALLY_FRAMES - QUIET_MIN_FRAMES):
        tally.add(0)
    assert not tally.quiet()
    for _ in range(QUIET_MIN_FRAMES):
        tally.add(0)
    assert tally.quiet() and tally.frames == TALLY_FRAMES


def test_the_count_does_not_depend_on_the_block_size():
    rng = np.random.default_rng(7)
    n = 3000
    counted = np.zeros(n, bool)
    for start in rng.integers(0, n - 80, 25):
        counted[start:start + rng.integers(5, 80)] = True
    heard = [int(v) for v in rng.random(n) < 0.3]
    for lo, hi in ((0, 400), (1500, 1900)):
        heard[lo:hi] = [UNCHECKED] * (hi - lo)
    counts = {tuple(run(counted, counted, block=b, heard=heard, call_at=1200)[0].frames)
              for b in (1, 7, 64, 333, n)}
    assert len(counts) == 1
    plain = run(counted, counted, block=64, heard=[UNCHECKED] * n)[0].frames
    assert counts != {tuple(plain)}  # silero's verdicts did change it


def test_heard_frames_hear_a_voice_and_restart_after_a_pause_in_the_checks():
    x = voice("hts1")[: 3 * ANALYSIS_RATE]
    n = len(x) // FRAME_LEN
    pcm = to_pcm16(x[: n * FRAME_LEN].reshape(n, FRAME_LEN).astype(np.float32))
    heard = HeardFrames()
    assert heard.hear(None, 5) == [UNCHECKED] * 5
    first = heard.hear(pcm, n)
    assert sum(first) >= 0.4 * n and set(first) <= {0, 1}
    heard.hear(None, 3)
    assert heard.hear(pcm, n) == first  # a fresh stream again
