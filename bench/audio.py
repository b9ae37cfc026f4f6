"""Small signal tools the benchmark builders share: resampling, levels, FFT-shaped noise.

Resampling goes through libsoxr (the ``soxr`` package), a well-kept high-quality resampler
that is independent of callwatch's own, so the test material does not inherit the quirks of
the code it measures. Filters are done in the frequency domain with numpy to avoid a SciPy
dependency for a handful of band shapes.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

DB_FLOOR = -150.0


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``x`` (float, 1-D) at ``rate_out``; a no-op when the rates match."""
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float64)
    return soxr.resample(np.asarray(x, dtype=np.float64), rate_in, rate_out, quality="HQ")


def db(power: float) -> float:
    """10·log10 of a mean-square value, floored so silence stays a finite number."""
    return 10.0 * math.log10(power) if power > 1e-15 else DB_FLOOR


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dBFS (full-scale square wave = 0 dBFS, the DESIGN.md §4.1 reference)."""
    if len(x) == 0:
        return DB_FLOOR
    return db(float(np.mean(np.square(x, dtype=np.float64))))


def frame_db(x: np.ndarray, frame: int) -> np.ndarray:
    """Per-frame mean-square level in dB over non-overlapping frames (tail dropped)."""
    n = len(x) // frame
    f = np.asarray(x[: n * frame], dtype=np.float64).reshape(n, frame)
    return 10.0 * np.log10(np.mean(f * f, axis=1) + 1e-15)


def shaped_noise(
    rng: np.random.Generator, n: int, rate: int, gain_of_hz: object
) -> np.ndarray:
    """White Gaussian noise of ``n`` samples shaped by ``gain_of_hz(freqs) -> amplitude``.

    The result is normalised to unit RMS so the caller sets the level explicitly.
    """
    size = fast_len(n)
    spec = np.fft.rfft(rng.standard_normal(size))
    spec *= gain_of_hz(np.fft.rfftfreq(size, 1.0 / rate))  # type: ignore[operator]
    y = np.fft.irfft(spec, size)[:n]
    r = float(np.sqrt(np.mean(y * y)))
    return y / r if r > 0 else y


def band_gain(lo_hz: float, hi_hz: float, slope_db_oct: float = 0.0):
    """A gain function: flat (or tilted) pass band with smooth cosine skirts of one octave."""

    def gain(f: np.ndarray) -> np.ndarray:
        f = np.maximum(f, 1.0)
        g = np.ones_like(f)
        lo_edge = np.clip(np.log2(f / (lo_hz / 2)), 0, 1)
        hi_edge = np.clip(np.log2((hi_hz * 2) / f), 0, 1)
        g *= 0.5 - 0.5 * np.cos(np.pi * lo_edge)
        g *= 0.5 - 0.5 * np.cos(np.pi * hi_edge)
        if slope_db_oct:
            g *= (f / 1000.0) ** (slope_db_oct / 6.0206)
        return g

    return gain


def fft_filter(x: np.ndarray, rate: int, gain_of_hz) -> np.ndarray:
    """Zero-phase filter ``x`` by a real gain curve (zero-padded to a fast FFT length)."""
    n = len(x)
    size = fast_len(n)
    spec = np.fft.rfft(x, size)
    spec *= gain_of_hz(np.fft.rfftfreq(size, 1.0 / rate))
    return np.fft.irfft(spec, size)[:n]


def fast_len(n: int) -> int:
    """A power of two >= n: pocketfft is slow on lengths with large prime factors."""
    return 1 << max(0, math.ceil(math.log2(max(n, 1))))


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1) to int16 with rounding and saturation (as a recorder would)."""
    return np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype(np.int16)
