"""The per-block helpers: clean input whatever arrives, the exact median, slices of a block."""

from __future__ import annotations

import numpy as np

from dsp.block import Block, median, medians, sanitize
from dsp.levels import frame_features


def test_sanitize_turns_broken_samples_into_valid_ones():
    x = np.array([np.nan, np.inf, -np.inf, 2.0, -3.0, 0.25], dtype=np.float64)
    y = sanitize(x)
    assert y.dtype == np.float32
    assert y.tolist() == [0.0, 1.0, -1.0, 1.0, -1.0, 0.25]
    pcm = sanitize(np.array([-32768, 16384], dtype=np.int16))
    assert pcm.tolist() == [-1.0, 0.5]


def test_median_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 50):
        x = rng.normal(size=n)
        assert median(x) == np.median(x)


def test_medians_are_numpys_column_medians_bit_for_bit():
    """Odd and even row counts, ties, and columns of a window of dB residuals."""
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 50, 399, 400):
        x = rng.normal(-20, 15, size=(n, 13))
        x[:, 3] = np.round(x[:, 3])  # ties
        x[:, 4] = -7.0
        assert np.array_equal(medians(x), np.median(x, axis=0))
        assert medians(x).dtype == np.float64 and medians(x).shape == (13,)


def test_a_slice_holds_the_frames_it_names():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.1, (6, 320)).astype(np.float32)
    c = rng.normal(0, 0.01, (6, 320)).astype(np.float32)
    fa, fc = frame_features(a, 0.99), frame_features(c, 0.99)
    clicks = np.array([True, False] * 3)
    blk = Block(fa, fc, np.arange(6), np.arange(6) * 2, clicks, ~clicks)
    blk.far_lagged = np.arange(12).reshape(6, 2)
    part = blk.slice(2, 5)
    assert part.fa.rms_dbfs.tolist() == fa.rms_dbfs[2:5].tolist()
    assert part.fc.energy.tolist() == fc.energy[2:5].tolist()
    assert part.pc.tolist() == [4, 6, 8] and part.a_clicks.tolist() == [True, False, True]
    assert part.far_lagged.tolist() == [[4, 5], [6, 7], [8, 9]]
