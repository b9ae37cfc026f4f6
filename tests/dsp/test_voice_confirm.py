"""silero's second opinion on a talk-over in noise: who is checked, what it hears, and that
the scores do not depend on how the checks fall."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.vad import MissingVadPackage, SileroVad, to_pcm16
from dsp.voice_confirm import (
    CONTEXT_FRAMES,
    MAX_SNR_DB,
    MIN_SHARE,
    NOISY_BACKGROUND_DBFS,
    PartyScores,
    VoiceConfirm,
    confirm_available,
    needs_check,
)
from tests.speech import voice

SPAN = 462


def test_who_is_checked_at_the_boundaries():
    assert needs_check(-30.0, -30.0 - MAX_SNR_DB + 0.01)
    assert not needs_check(-30.0, -30.0 - MAX_SNR_DB)
    assert needs_check(None, NOISY_BACKGROUND_DBFS)
    assert not needs_check(None, NOISY_BACKGROUND_DBFS - 0.01)
    assert not needs_check(-30.0, None) and not needs_check(None, None)


def test_which_engines_check():
    assert confirm_available("auto") and confirm_available("silero")
    assert not confirm_available("none")
    with pytest.raises(ValueError, match="unknown confirm_vad 'webrtc'"):
        confirm_available("webrtc")


@pytest.mark.parametrize("module", ["onnxruntime", "silero_vad"])
def test_auto_does_without_silero_and_silero_says_what_is_missing(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)
    assert not confirm_available("auto")
    with pytest.raises(MissingVadPackage, match=r"callwatch\[neural\]|silero-vad"):
        confirm_available("silero")


def _ring(x: np.ndarray) -> np.ndarray:
    """``x`` (16 kHz float) as a ring of int16 frames long enough to need no wrapping."""
    n = len(x) // FRAME_LEN
    return to_pcm16(x[: n * FRAME_LEN].reshape(n, FRAME_LEN).astype(np.float32))


def _train(seconds: float) -> np.ndarray:
    from bench.noises import train

    return train(np.random.default_rng(5), int(seconds * ANALYSIS_RATE), ANALYSIS_RATE) * 0.03


def test_silero_hears_a_voice_and_not_a_train():
    speech = _ring(voice("hts1")[: 4 * ANALYSIS_RATE])
    noise = _ring(_train(4.0))
    model = SileroVad(2)
    heard = PartyScores(model).share(speech, 100, 180, SPAN)
    unheard = PartyScores(model.sibling()).share(noise, 100, 180, SPAN)
    assert heard >= 0.5 and unheard <= 0.1 and heard >= MIN_SHARE > unheard


def test_scores_carried_on_equal_scores_in_one_go():
    """A vetoed episode is checked again every few frames: going on from the frames scored
    gives what one pass from the same anchor gives, so the events do not depend on how the
    checks fall (they fall on the same frames however the audio is chunked)."""
    ring = _ring(np.concatenate([voice("kristoff"), _train(4.0)])[: 9 * ANALYSIS_RATE])
    model = SileroVad(2)
    stepwise = PartyScores(model)
    shares = [stepwise.share(ring, s, s + 40, SPAN) for s in range(100, 300, 10)]
    once = PartyScores(model.sibling())
    once.share(ring, 100, 330, SPAN)
    assert stepwise.anchor == once.anchor == 100 - CONTEXT_FRAMES
    assert np.array_equal(stepwise.scores, once.scores)
    assert shares[-1] == once.share(ring, 290, 330, SPAN)
    # A check whose context the scores do not cover starts afresh.
    assert stepwise.share(ring, 60, 120, SPAN) == PartyScores(SileroVad(2)).share(
        ring, 60, 120, SPAN)


def test_a_party_not_in_noise_is_never_checked_nor_the_model_loaded():
    noise = _ring(_train(4.0))
    confirm = VoiceConfirm(len(noise), 50)
    pos = np.arange(len(noise))
    confirm.record(pos, noise, noise, (False, False))
    assert not confirm.unheard(100, 180)
    assert confirm._parties is None
    confirm.record(pos, noise, noise, (False, True))
    assert confirm.unheard(100, 180)
