"""ITU-T P.56 method B active speech level, for ground truth of the development set.

The truth must not come from the code being measured (``dsp.levels``), and the literal
per-sample reference ``bench.p56_reference`` takes ~15 s per minute of audio, too slow to
label an hour of calls. So this module computes the same method B (0.03 s two-stage envelope,
0.2 s hangover, 15.9 dB margin, 2^-15..2^0 threshold ladder, interpolated crossing) with the
envelope as one FFT convolution and the hangover as a running maximum, and
``tests/bench/test_levels.py`` holds it to the reference within a few hundredths of a dB.
"""

from __future__ import annotations

import math

import numpy as np

MARGIN_DB = 15.9
TIME_CONSTANT_S = 0.03
HANGOVER_S = 0.2
N_THRESHOLDS = 16


def _envelope(x: np.ndarray, rate: int) -> np.ndarray:
    """Two cascaded one-pole smoothers of |x| (P.56's p(n) and q(n)) as one FIR convolution."""
    g = math.exp(-1.0 / (rate * TIME_CONSTANT_S))
    n_taps = int(rate * TIME_CONSTANT_S * 16)
    k = np.arange(n_taps, dtype=np.float64)
    h = (1 - g) ** 2 * (k + 1) * g**k
    a = np.abs(np.asarray(x, dtype=np.float64))
    size = 1 << math.ceil(math.log2(len(a) + n_taps))
    q = np.fft.irfft(np.fft.rfft(a, size) * np.fft.rfft(h, size), size)[: len(a)]
    return np.maximum(q, 0.0)


def p56_active_level_dbfs(x: np.ndarray, rate: int) -> float | None:
    """Active speech level of ``x`` (float in [-1, 1)) in dBFS, or None if there is no speech."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return None
    energy = float(np.sum(x * x))
    if energy <= 0:
        return None
    q = _envelope(x, rate)
    hang = int(HANGOVER_S * rate)
    idx = np.arange(len(x))
    prev_a: float | None = None
    prev_c: float | None = None
    prev_d: float | None = None
    for j in range(N_THRESHOLDS):
        c = 2.0 ** (j - N_THRESHOLDS + 1)  # 2^-15 .. 2^0 of full scale
        above = q >= c
        if not above.any():
            break
        last = np.maximum.accumulate(np.where(above, idx, -(hang + 2)))
        count = int(np.count_nonzero(idx - last <= hang))
        a_db = 10 * math.log10(energy / count)
        c_db = 20 * math.log10(c)
        d = a_db - c_db
        if d <= MARGIN_DB:
            if prev_d is None or prev_a is None or prev_c is None:
                return a_db
            # Interpolate between the two ladder steps where the margin is crossed.
            frac = (prev_d - MARGIN_DB) / (prev_d - d)
            return prev_a + frac * (a_db - prev_a)
        prev_a, prev_c, prev_d = a_db, c_db, d
    return prev_a


def active_level_dbfs(x: np.ndarray, rate: int) -> float | None:
    """P.56 active level used for the development set's truth (see the module docstring)."""
    return p56_active_level_dbfs(x, rate)


def level_method() -> str:
    """Provenance of the truth levels, written into every truth file."""
    return "ITU-T P.56 method B (bench.levels, checked against bench.p56_reference)"
