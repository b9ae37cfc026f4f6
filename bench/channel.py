"""What a telephone line does to a party's audio: the 300-3400 Hz band and G.711 mu-law.

Real far ends arrive through the telephone network, band-limited and companded, then placed
in files at whatever rate the recorder uses; the accuracy sets put such audio into 8, 16 and
48 kHz files. Both are plain numpy so the material does not depend on the code measured.
"""

from __future__ import annotations

import numpy as np

from bench.audio import fft_filter

BAND_HZ = (300.0, 3400.0)
SKIRT_HZ = (200.0, 4000.0)
MU = 255.0


def _band(f: np.ndarray) -> np.ndarray:
    """Unity over 300-3400 Hz, raised-cosine skirts down to 200 Hz and up to 4 kHz."""
    g = np.zeros_like(f)
    lo, hi = BAND_HZ
    s_lo, s_hi = SKIRT_HZ
    g[(f >= lo) & (f <= hi)] = 1.0
    m = (f > s_lo) & (f < lo)
    g[m] = 0.5 - 0.5 * np.cos(np.pi * (f[m] - s_lo) / (lo - s_lo))
    m = (f > hi) & (f < s_hi)
    g[m] = 0.5 + 0.5 * np.cos(np.pi * (f[m] - hi) / (s_hi - hi))
    return g


def telephone_band(x: np.ndarray, rate: int) -> np.ndarray:
    """``x`` band-limited to the telephone band (zero-phase)."""
    return fft_filter(np.asarray(x, dtype=np.float64), rate, _band)


def mu_law_round_trip(x: np.ndarray) -> np.ndarray:
    """``x`` encoded to 8-bit mu-law (G.711's curve, mu = 255) and decoded again."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    q = np.round(y * 127.0) / 127.0
    return np.sign(q) * np.expm1(np.abs(q) * np.log1p(MU)) / MU
