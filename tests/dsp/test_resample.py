"""Resampler: tone amplitude/frequency/phase, anti-aliasing, lengths and chunk invariance."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.resample import Resampler

RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000]
PAIRS = [(r, 16000) for r in RATES] + [(16000, 8000), (48000, 8000), (8000, 11025)]


def tone(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def resample_all(x: np.ndarray, r: Resampler, chunks: list[int] | None = None) -> np.ndarray:
    if chunks is None:
        return np.concatenate([r.process(x), r.flush()])
    out, pos = [], 0
    for n in chunks:
        out.append(r.process(x[pos : pos + n]))
        pos += n
    assert pos == len(x)
    out.append(r.flush())
    return np.concatenate(out)


def steady(y: np.ndarray, rate: int) -> slice:
    """Skip 50 ms at both ends, where the zero history and the zero-padded flush show."""
    return slice(rate // 20, len(y) - rate // 20)


def fit_sine(y: np.ndarray, freq: float, rate: int, start: int) -> tuple[float, float, float]:
    """Least-squares sine at ``freq``: (amplitude, phase, residual RMS)."""
    t = (start + np.arange(len(y))) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y.astype(np.float64), rcond=None)
    resid = y - basis @ coef
    return float(np.hypot(*coef)), float(np.arctan2(coef[1], coef[0])), float(np.std(resid))


@pytest.mark.parametrize(("rin", "rout"), PAIRS)
def test_1khz_tone_keeps_amplitude_frequency_and_time_alignment(rin: int, rout: int) -> None:
    y = resample_all(tone(1000, rin, 0.5), Resampler(rin, rout))
    s = steady(y, rout)
    amp, phase, resid = fit_sine(y[s], 1000, rout, s.start)
    assert abs(20 * np.log10(amp / 0.5)) < 0.1
    assert resid < 0.5 * 1e-3  # nothing but the 1 kHz tone is left: the frequency is right
    assert abs(phase) < 1e-3  # output k is input time k/out_rate: no group delay left
    assert Resampler(rin, rout).delay_samples == 0


@pytest.mark.parametrize(("rin", "rout"), [(48000, 16000), (44100, 16000), (8000, 16000)])
def test_passband_is_flat_to_the_passband_edge(rin: int, rout: int) -> None:
    nyq = min(rin, rout) / 2
    for f in (100.0, 0.5 * nyq, 0.9 * nyq):  # the spec: flat to 0.9 × the lower Nyquist
        y = resample_all(tone(f, rin, 0.4), Resampler(rin, rout))
        s = steady(y, rout)
        amp, _, _ = fit_sine(y[s], f, rout, s.start)
        assert abs(20 * np.log10(amp / 0.5)) < 0.1, f"{f:.0f} Hz"


@pytest.mark.parametrize(
    ("rin", "freq"),
    [(48000, 10000), (48000, 8000), (48000, 8400), (48000, 15000), (48000, 23000),
     (44100, 8000), (44100, 12345), (44100, 21000), (22050, 9000), (32000, 8100)],
)
def test_tones_above_the_output_nyquist_are_attenuated_60_db(rin: int, freq: float) -> None:
    y = resample_all(tone(freq, rin, 0.4), Resampler(rin, 16000))
    rms = float(np.sqrt(np.mean(y[steady(y, 16000)].astype(np.float64) ** 2)))
    assert 20 * np.log10(rms / (0.5 / np.sqrt(2))) < -60


def test_upsampling_images_are_attenuated_60_db() -> None:
    # 3 kHz at 8 kHz images to 5 kHz at 16 kHz; everything but the 3 kHz tone is image.
    y = resample_all(tone(3000, 8000, 0.4), Resampler(8000, 16000))
    s = steady(y, 16000)
    amp, _, resid = fit_sine(y[s], 3000, 16000, s.start)
    assert 20 * np.log10(resid / (amp / np.sqrt(2))) < -60


@pytest.mark.parametrize(("rin", "rout"), PAIRS)
def test_output_is_bit_identical_however_the_input_is_chunked(rin: int, rout: int) -> None:
    rng = np.random.default_rng(rin + rout)
    x = (rng.standard_normal(int(rin * 0.7)) * 0.2).astype(np.float32)
    whole = resample_all(x, Resampler(rin, rout))
    ten_ms = [rin // 100] * (len(x) // (rin // 100)) + [len(x) % (rin // 100)]
    rand: list[int] = []
    while sum(rand) < len(x):
        rand.append(int(rng.choice([0, 1, 2, int(rng.integers(0, 3 * rin // 10))])))
    rand[-1] -= sum(rand) - len(x)
    r = Resampler(rin, rout)  # one instance reused: flush() must leave it like new
    for chunks in (ten_ms, rand, [len(x)]):
        assert np.array_equal(resample_all(x, r, chunks), whole)


@pytest.mark.parametrize(("rin", "rout"), PAIRS)
@pytest.mark.parametrize("n", [0, 1, 7, 441, 12_345])
def test_output_length_after_flush(rin: int, rout: int, n: int) -> None:
    y = resample_all(np.ones(n, dtype=np.float32), Resampler(rin, rout))
    assert len(y) == -(-n * rout // rin)  # ceil: one output per output instant inside the input
    assert abs(len(y) - round(n * rout / rin)) <= 1
    assert y.dtype == np.float32


def test_equal_rates_pass_float32_through_without_copying() -> None:
    r = Resampler(16000, 16000)
    x = tone(440, 16000, 0.1)
    y = r.process(x)
    assert y is x or np.shares_memory(x, y)
    assert r.flush().size == 0
    np.testing.assert_array_equal(r.process(x.astype(np.float64)), x)


def test_output_only_waits_for_one_block_and_the_kernel() -> None:
    r = Resampler(48000, 16000)
    x = np.zeros(r.latency_samples, dtype=np.float32)
    assert r.process(x[:-1]).size == 0
    assert r.process(x[-1:]).size > 0


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="positive integers"):
        Resampler(0, 16000)
    with pytest.raises(ValueError, match="1-D"):
        Resampler(48000).process(np.zeros((10, 2), dtype=np.float32))


def test_integer_pcm_is_scaled_before_resampling() -> None:
    pcm = (tone(1000, 48000, 0.3) * 32768).astype(np.int16)
    y = resample_all(pcm, Resampler(48000, 16000))
    ref = resample_all(pcm.astype(np.float32) / 32768, Resampler(48000, 16000))
    np.testing.assert_array_equal(y, ref)
