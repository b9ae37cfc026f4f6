"""Signalling tones (DTMF keys, call-progress tones) left out of the speech decisions: found
at ordinary line levels and noise, hardly ever on real speech, the same under any chunking,
and, in the pipeline, a customer keying a card number keeps their level and their words."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.events import Kind, Phase
from dsp.levels import frame_features
from dsp.pipeline import Pipeline
from dsp.tones import signalling_tones, tone_frames
from tests.speech import AGENT_VOICES, CUSTOMER_VOICES, place, two_party_call, voice

RATE = ANALYSIS_RATE
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)


def _tone(freqs: tuple[float, ...], seconds: float, dbfs: float, phase: float = 0.3
          ) -> np.ndarray:
    """A sum of sinusoids of equal level whose RMS is ``dbfs``."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f * t + phase * k) for k, f in enumerate(freqs))
    return (x * 10 ** (dbfs / 20) / np.sqrt(len(freqs) / 2)).astype(np.float32)


def _frames(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = x[: len(x) // FRAME_LEN * FRAME_LEN].reshape(-1, FRAME_LEN)
    return f, frame_features(f, 1.0).rms_dbfs


def _hiss(n: int, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 10 ** (dbfs / 20)).astype(np.float32)


@pytest.mark.parametrize(("dbfs", "hiss"), [(-9.0, -65.0), (-20.0, -70.0)])
def test_every_dtmf_key_over_line_hiss_is_a_tone(dbfs, hiss):
    """50 dB or more over white hiss (an analogue line's; a softphone's decoded line is
    quieter): at 45 dB the predictor's residual is the hiss, amplified by its coefficients,
    and a key reads 28-31 dB, half its frames under the limit."""
    for row in ROWS:
        for col in COLS:
            x = _tone((row, col), 0.1, dbfs)
            f, db = _frames(x + _hiss(len(x), hiss))
            tone, dtmf = tone_frames(f, db)
            assert tone.all() and dtmf.all(), (row, col, dbfs)


@pytest.mark.parametrize("freqs", [(425.0,), (440.0, 480.0), (350.0, 440.0), (480.0, 620.0),
                                   (400.0, 450.0), (950.0,), (1400.0,), (1800.0,)])
def test_call_progress_tones_are_tones(freqs):
    x = _tone(freqs, 1.0, -22.0)
    f, db = _frames(x + _hiss(len(x), -65.0))
    tone, dtmf = tone_frames(f, db)
    assert tone.mean() >= 0.95 and not dtmf.any()


def test_real_speech_is_hardly_ever_left_out():
    """Six recorded voices at about -26 dBFS: under 0.5 % of their frames over -50 dBFS."""
    out = total = 0
    for name in AGENT_VOICES + CUSTOMER_VOICES:
        f, db = _frames(voice(name))
        veto, _, _ = signalling_tones(f, db, 0)
        out += int(veto.sum())
        total += int((db >= -50.0).sum())
    assert total > 1000 and out / total < 0.005


def test_a_tone_is_left_out_from_its_second_frame_whatever_the_chunking():
    x = np.concatenate([_tone((770.0, 1336.0), 0.1, -12.0), np.zeros(1600, np.float32)] * 3)
    x = x + _hiss(len(x), -70.0)
    f, db = _frames(x)
    whole, _, _ = signalling_tones(f, db, 0)
    assert whole.sum() == 3 * 4  # five frames a key, the first kept
    for size in (1, 2, 7):
        parts, before = [], 0
        for i in range(0, len(f), size):
            veto, _, before = signalling_tones(f[i : i + size], db[i : i + size], before)
            parts.append(veto)
        assert np.array_equal(np.concatenate(parts), whole)


def test_a_customer_keying_a_card_number_keeps_their_level_and_their_words():
    """16 keys at -9 dBFS, then the customer explains: counted as speech, the keys lifted
    their level by 8 dB, their voice no longer started spurts, and the call read as dead air
    while they talked."""
    from bench.levels import active_level_dbfs

    turns = [("agent", "kristoff", 0.3), ("customer", "hts2", 9.0),
             ("customer", "cq_ref", 15.5), ("customer", "vk5qi", 21.5)]
    agent, customer = two_party_call(turns, 30, seed=2)
    voice_level = active_level_dbfs(customer, RATE)
    keys = np.concatenate([np.concatenate([_tone((ROWS[k % 4], COLS[(k * 3) % 4]), 0.1, -9.0),
                                           np.zeros(1600, np.float32)]) for k in range(16)])
    place(customer, keys, 5.0)
    p = Pipeline()
    events = p.push(agent, customer) + p.finish()
    silences = [e for e in events if e.kind is Kind.SILENCE and e.phase is Phase.END]
    assert all(e.end / RATE <= 9.5 for e in silences), silences
    assert p.stats.customer.active_level_dbfs == pytest.approx(voice_level, abs=1.5)
    assert not [e for e in events if e.kind is Kind.TALK_OVER]


def test_a_ringing_line_is_neither_speech_nor_dead_air():
    """The agent dials and says one line while a US ringback (440+480 Hz, 2 s on, 4 s off)
    plays for 18 s; then the customer answers. The tone is not the customer talking over
    the agent, and the ringing is not silence: no talk-over, no dead air."""
    turns = [("agent", "kristoff", 2.5), ("customer", "hts2", 19.0), ("agent", "mmt1", 25.5)]
    agent, customer = two_party_call(turns, 32, seed=4)
    ring = np.concatenate([_tone((440.0, 480.0), 2.0, -22.0), np.zeros(4 * RATE, np.float32)])
    place(customer, np.tile(ring, 3), 0.5)
    p = Pipeline()
    events = p.push(agent, customer) + p.finish()
    assert not [e for e in events if e.kind in (Kind.TALK_OVER, Kind.SILENCE)], events
