"""ITU-T P.56 method B active speech level, computed literally, sample by sample.

This is the yardstick for :class:`dsp.levels.ActiveLevelMeter` (tests and benchmarks): it
follows the recommendation and the G.191 ``sv56`` speech voltmeter step by step, with no
vectorisation or algebra that could hide a mistake, so the two implementations only agree if
the fast one is right. It is slow (about 2 µs per sample per 16 thresholds in CPython), which
is fine for seconds of test audio.

Per sample ``x`` (float, full scale ±1):

* envelope: ``p = g·p + (1−g)·|x|``, ``q = g·q + (1−g)·p`` with ``g = exp(−1/(f·T))``,
  T = 0.03 s;
* for every threshold ``c_j``: if ``q >= c_j`` the sample is active and the hangover counter
  restarts; else, while the counter is below ``I = round(H·f)`` (H = 0.2 s) the sample is still
  active and the counter advances;
* the sum of squares of all samples ``s``.

Then ``A_j = 10·log10(s / a_j)``, ``C_j = 20·log10(c_j)`` and the active level is ``A`` where
``A_j − C_j`` first falls to M = 15.9 dB, interpolated linearly (in dB) between the two
thresholds that bracket the crossing. sv56 finds that point by bisection with a 0.5 dB
tolerance; the exact linear interpolation is what that bisection approximates.

Thresholds: P.56 defines ``c_j = 2^j`` in 16-bit units, j = 0..15, i.e. 2^-15 .. 2^0 of full
scale (``steps_per_octave=1``, the default here). ``steps_per_octave=8`` gives the finer ladder
the streaming meter uses, so the two can be compared threshold for threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from dsp.levels import to_float32

T_S = 0.03  # envelope time constant
H_S = 0.2  # hangover
M_DB = 15.9  # margin


def thresholds(steps_per_octave: int = 1) -> list[float]:
    """c_j: 2^-15 .. 2^0 of full scale (P.56's 16-bit 2^0 .. 2^15), optionally subdivided
    linearly inside each octave: 2^e · (1 + m/steps)."""
    return [2.0**e * (1.0 + m / steps_per_octave) for e in range(-15, 1)
            for m in range(steps_per_octave)]


@dataclass(frozen=True)
class P56Result:
    level_dbfs: float | None  # active speech level; None if there is no speech to measure
    activity: float  # fraction of samples active at the level's threshold
    energy: float  # sum of squares of all samples
    samples: int
    active_counts: tuple[int, ...]  # a_j per threshold


def measure(x: ArrayLike, rate: int, steps_per_octave: int = 1) -> P56Result:
    """Run the speech voltmeter over ``x`` (float in [-1, 1) or integer PCM) at ``rate`` Hz."""
    a = np.asarray(x)
    if a.dtype.kind in "iu":
        a = to_float32(a)
    samples = [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]
    c = thresholds(steps_per_octave)
    n_thr = len(c)

    g = math.exp(-1.0 / (rate * T_S))
    big_i = math.floor(H_S * rate + 0.5)
    p = q = 0.0
    s = 0.0
    active = [0] * n_thr
    hang = [big_i] * n_thr  # no hangover before the first crossing
    for v in samples:
        s += v * v
        p = g * p + (1.0 - g) * abs(v)
        q = g * q + (1.0 - g) * p
        for j in range(n_thr):
            if q >= c[j]:
                active[j] += 1
                hang[j] = 0
            elif hang[j] < big_i:
                active[j] += 1
                hang[j] += 1

    level: float | None = None
    if s > 0.0 and active[0] > 0:
        prev_a = prev_d = None
        for j in range(n_thr):
            if active[j] == 0:
                break
            a_db = 10.0 * math.log10(s / active[j])
            c_db = 20.0 * math.log10(c[j])
            d = a_db - c_db
            if d <= M_DB:
                if prev_a is None or prev_d is None:
                    level = a_db
                else:
                    level = prev_a + (prev_d - M_DB) / (prev_d - d) * (a_db - prev_a)
                break
            prev_a, prev_d = a_db, d
    activity = 0.0
    if level is not None:
        activity = min(1.0, s / (len(samples) * 10.0 ** (level / 10.0)))
    return P56Result(level, activity, s, len(samples), tuple(active))


def active_level_dbfs(x: ArrayLike, rate: int, steps_per_octave: int = 1) -> float | None:
    """P.56 method B active speech level of ``x`` in dBFS, or None if there is no speech."""
    return measure(x, rate, steps_per_octave).level_dbfs
