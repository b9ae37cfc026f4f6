"""Levels: dBFS reference points, floors, frame features, and the P.56 active level meter
checked against the literal per-sample reference on real speech (Debian codec2-examples)."""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from bench.p56_reference import measure, thresholds
from dsp.levels import (
    DBFS_FLOOR,
    ActiveLevelMeter,
    amplitude_dbfs,
    frame_features,
    p56_thresholds,
    power_dbfs,
    rms_dbfs,
    to_float32,
)
from dsp.resample import Resampler

CODEC2_RAW = Path("/usr/share/codec2/raw")


@cache
def clip(name: str) -> np.ndarray:
    """A real 8 kHz recording from codec2-examples as float64 in [-1, 1)."""
    path = CODEC2_RAW / f"{name}.raw"
    if not path.exists():
        raise FileNotFoundError(f"{path}: install Debian's codec2-examples (make test does)")
    return np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0


@cache
def with_gaps() -> np.ndarray:
    """Two talkers with 2 s of digital silence and 1.5 s of -70 dBFS noise between them."""
    noise = np.random.default_rng(3).standard_normal(12_000) * 10 ** (-70 / 20)
    return np.concatenate([clip("mmt1"), np.zeros(16_000), clip("hts2"), noise, clip("mmt1")])


@cache
def reference(name: str, steps: int, rate: int = 8000) -> float:
    x = with_gaps() if name == "gaps" else clip(name)
    if rate != 8000:
        x = upsample(name)
    level = measure(x, rate, steps_per_octave=steps).level_dbfs
    assert level is not None
    return level


@cache
def upsample(name: str) -> np.ndarray:
    r = Resampler(8000, 16000)
    x = clip(name).astype(np.float32)
    return np.concatenate([r.process(x), r.flush()]).astype(np.float64)


def meter_level(x: np.ndarray, rate: int = 8000, **kw: int) -> float:
    m = ActiveLevelMeter(rate, **kw)
    m.process(x)
    assert m.level_dbfs is not None
    return m.level_dbfs


def sine(amp: float, n: int = 16_000, freq: float = 997.0, rate: int = 16_000) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)


# --- conversion and dBFS --------------------------------------------------------------------


def test_to_float32_scales_every_pcm_format_onto_minus_one_to_one() -> None:
    np.testing.assert_array_equal(to_float32(np.array([-32768, 0, 16384], np.int16)), [-1, 0, 0.5])
    np.testing.assert_array_equal(to_float32(np.array([-(2**31), 2**30], np.int32)), [-1, 0.5])
    np.testing.assert_array_equal(to_float32(np.array([0, 128, 192], np.uint8)), [-1, 0, 0.5])
    np.testing.assert_array_equal(to_float32(np.array([-128, 64], np.int8)), [-1, 0.5])
    f32 = np.array([0.25, -0.5], np.float32)
    assert to_float32(f32) is f32  # no copy on the hot path
    out = to_float32(np.array([0.25, -0.5]))
    assert out.dtype == np.float32 and list(out) == [0.25, -0.5]
    with pytest.raises(ValueError, match="unsupported sample type int64"):
        to_float32(np.zeros(3, np.int64))


def test_dbfs_reference_points() -> None:
    assert rms_dbfs(sine(0.1 * np.sqrt(2))) == pytest.approx(-20.0, abs=0.01)
    square = np.where(np.arange(16_000) % 40 < 20, 1.0, -1.0)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=1e-9)
    assert rms_dbfs(sine(1.0)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.full(100, -16384, np.int16)) == pytest.approx(-6.02, abs=0.01)
    assert power_dbfs(0.01) == pytest.approx(-20.0)
    assert amplitude_dbfs(0.5) == pytest.approx(-6.0206, abs=1e-4)


def test_silence_gives_the_floor_never_inf_or_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero / invalid warnings either
        assert rms_dbfs(np.zeros(320)) == DBFS_FLOOR
        assert rms_dbfs(np.zeros(0)) == DBFS_FLOOR
        assert power_dbfs(0.0) == DBFS_FLOOR and amplitude_dbfs(0.0) == DBFS_FLOOR
        arr = power_dbfs(np.array([0.0, np.nan, 1e-30, 1.0]))
        np.testing.assert_array_equal(arr, [DBFS_FLOOR, DBFS_FLOOR, DBFS_FLOOR, 0.0])
        np.testing.assert_array_equal(amplitude_dbfs(np.array([0.0, np.nan])), [DBFS_FLOOR] * 2)


def test_frame_features_are_exact_per_frame() -> None:
    frames = np.zeros((4, 320), np.float32)
    frames[0] = sine(0.1 * np.sqrt(2), 320, freq=1000.0)  # whole periods: RMS exactly 0.1
    frames[1, [5, 77, 300]] = [0.995, -1.0, 0.99]  # clipped at clip_level 0.99
    frames[1, 6] = 0.989  # just under: not clipped
    frames[2] = 1.0
    f = frame_features(frames, clip_level=0.99)
    np.testing.assert_allclose(f.rms_dbfs[[0, 2]], [-20.0, 0.0], atol=1e-4)
    assert f.rms_dbfs[3] == DBFS_FLOOR and f.peak_dbfs[3] == DBFS_FLOOR
    assert f.peak_dbfs[1] == pytest.approx(0.0)
    assert f.peak_dbfs[0] == pytest.approx(-16.99, abs=0.01)
    np.testing.assert_array_equal(f.clipped, [0, 3, 320, 0])
    np.testing.assert_array_equal(f.clipped_ratio, [0, 3 / 320, 1.0, 0])
    assert f.energy.dtype == np.float64
    np.testing.assert_allclose(f.energy, (frames.astype(np.float64) ** 2).mean(axis=1), rtol=1e-12)


# --- P.56 active level ----------------------------------------------------------------------


def test_the_threshold_ladder_is_p56s_with_finer_steps() -> None:
    np.testing.assert_array_equal(p56_thresholds(1), [2.0**-j for j in range(15, -1, -1)])
    np.testing.assert_array_equal(p56_thresholds(8), thresholds(8))


@pytest.mark.parametrize("name", ["hts1", "kristoff", "gaps"])
def test_per_sample_meter_equals_the_literal_reference(name: str) -> None:
    """cell_samples=1 is P.56 exactly: only the vectorised algebra differs from the loop."""
    x = with_gaps() if name == "gaps" else clip(name)
    assert meter_level(x, cell_samples=1) == pytest.approx(reference(name, 8), abs=1e-6)


@pytest.mark.parametrize("name", ["hts1", "kristoff", "gaps"])
def test_default_meter_is_within_hundredths_of_a_db_of_the_reference(name: str) -> None:
    x = with_gaps() if name == "gaps" else clip(name)
    assert meter_level(x) == pytest.approx(reference(name, 8), abs=0.02)  # 0.5 ms activity cells


@pytest.mark.parametrize("name", ["hts1", "kristoff", "cq_ref", "hts2_gaps"])
def test_meter_agrees_with_p56s_own_16_threshold_ladder(name: str) -> None:
    """The finer ladder moves the interpolated crossing by a few hundredths of a dB on these.

    (Where A_j − C_j is not monotonic near the margin — e.g. mmt1 cut by silences — the 6 dB
    ladder interpolates across the dip and the two ladders can differ by more than 1 dB; the
    finer ladder then follows P.56's first-crossing rule more faithfully.)
    """
    if name == "hts2_gaps":
        x = clip("hts2")
        x = np.concatenate([np.zeros(8000), x[:24_000], np.zeros(20_000), x[24_000:]])
        ref = measure(x, 8000, steps_per_octave=1).level_dbfs
    else:
        x, ref = clip(name), reference(name, 1)
    assert meter_level(x) == pytest.approx(ref, abs=0.3)


def test_16khz_meter_matches_the_reference() -> None:
    assert meter_level(upsample("hts1"), 16_000) == pytest.approx(
        reference("hts1", 8, 16_000), abs=0.02
    )


@pytest.mark.parametrize("name", ["hts1", "kristoff", "cq_ref"])
def test_speech_scaled_to_minus_26_measures_minus_26(name: str) -> None:
    x = clip(name) * 10 ** ((-26.0 - reference(name, 1)) / 20)
    assert meter_level(x) == pytest.approx(-26.0, abs=0.5)
    assert meter_level(x * 0.1) == pytest.approx(-46.0, abs=0.5)


def test_silence_between_utterances_leaves_the_active_level_alone() -> None:
    a, b = clip("hts1"), clip("kristoff")
    tight = np.concatenate([a, b])
    gappy = np.concatenate([np.zeros(8000), a, np.zeros(40_000), b, np.zeros(24_000)])
    assert meter_level(gappy) == pytest.approx(meter_level(tight), abs=0.1)
    assert rms_dbfs(gappy) < rms_dbfs(tight) - 2.0  # while plain RMS drops with the silence
    m_tight, m_gappy = ActiveLevelMeter(8000), ActiveLevelMeter(8000)
    m_tight.process(tight)
    m_gappy.process(gappy)
    # The same speech is active; it is a smaller fraction of the longer recording.
    assert 0.5 < m_tight.activity < 0.95
    assert m_gappy.activity * len(gappy) == pytest.approx(m_tight.activity * len(tight), rel=0.05)


def test_a_continuous_sine_is_active_throughout_at_its_rms_level() -> None:
    m = ActiveLevelMeter(16_000)
    m.process(sine(0.5, 32_000))
    assert m.level_dbfs == pytest.approx(rms_dbfs(sine(0.5, 32_000)), abs=0.1)
    assert m.activity == pytest.approx(1.0, abs=0.02)


def test_no_speech_gives_none() -> None:
    m = ActiveLevelMeter(16_000)
    assert m.level_dbfs is None and m.activity == 0.0
    m.process(np.zeros(40_000, np.float32))
    assert m.level_dbfs is None and m.activity == 0.0
    m.process(np.random.default_rng(0).standard_normal(16_000) * 1e-6)  # under 2^-15
    assert m.level_dbfs is None


def test_chunking_does_not_change_a_single_bit() -> None:
    x = with_gaps()
    whole = ActiveLevelMeter(8000)
    whole.process(x)
    rng = np.random.default_rng(5)
    for sizes in ([160] * (len(x) // 160 + 1), None):
        m = ActiveLevelMeter(8000)
        pos = 0
        while pos < len(x):
            n = int(rng.choice([0, 1, int(rng.integers(2, 20_000))])) if sizes is None else 160
            m.process(x[pos : pos + n])
            pos += n
            if rng.random() < 0.05:  # reading mid-stream must not disturb anything either
                m.level_dbfs  # noqa: B018
        assert m.level_dbfs == whole.level_dbfs and m.activity == whole.activity
    # A read between blocks covers exactly the samples so far.
    part = ActiveLevelMeter(8000)
    part.process(x[:12_345])
    fresh = ActiveLevelMeter(8000)
    fresh.process(x[:12_345].copy())
    assert part.level_dbfs == pytest.approx(meter_level(x[:12_345], cell_samples=1), abs=0.02)
    assert part.level_dbfs == fresh.level_dbfs


def test_reset_starts_a_new_measurement_and_int16_is_accepted() -> None:
    m = ActiveLevelMeter(8000)
    m.process(clip("hts1") * 0.01)
    m.reset()
    pcm = np.round(clip("kristoff") * 32767).astype(np.int16)
    m.process(pcm)
    assert m.samples == len(pcm)
    assert m.level_dbfs == pytest.approx(meter_level(clip("kristoff")), abs=0.01)


def test_nan_and_inf_from_a_broken_source_do_not_poison_the_meter() -> None:
    x = clip("hts1").copy()
    clean = meter_level(x)
    x[[100, 20_000]] = [np.nan, np.inf]
    m = ActiveLevelMeter(8000)
    m.process(x)
    m.process(clip("hts1"))
    assert m.level_dbfs is not None and abs(m.level_dbfs - clean) < 1.0
