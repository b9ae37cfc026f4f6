"""Level meters: sample conversion, dBFS, per-frame features and the ITU-T P.56 active level.

Reference level (DESIGN.md §4.1): dBFS = 20·log10(RMS) with samples in [-1, 1), so a
full-scale square wave is 0 dBFS and a full-scale sine −3.01 dBFS (the dBov of ITU-T). Every
level function floors at :data:`DBFS_FLOOR` instead of returning -inf or NaN: digital silence is
a normal input (a muted mic), and one -inf would poison every mean, comparison and JSON export
downstream.
"""

from __future__ import annotations

import math
from typing import NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike

DBFS_FLOOR = -120.0
"""Level reported for digital silence; well under the 16-bit noise floor (−101 dBFS)."""

_POWER_FLOOR = 10.0 ** (DBFS_FLOOR / 10.0)
_AMPLITUDE_FLOOR = 10.0 ** (DBFS_FLOOR / 20.0)

# Integer sample formats and the divisor that maps them onto [-1, 1).
_INT_SCALE = {
    np.dtype(np.int8): 2.0**-7,
    np.dtype(np.int16): 2.0**-15,
    np.dtype(np.int32): 2.0**-31,
}


def to_float32(x: ArrayLike) -> np.ndarray:
    """Samples as float32 in [-1, 1), whatever PCM format they came in.

    int8/int16/int32 are divided by 2^7/2^15/2^31 (a power of two, so the scaling is exact),
    uint8 (8-bit WAV) is offset by 128 first, float32 is returned as is (no copy) and other
    floats are cast. This is the one conversion point of the project, so a 24-bit file read as
    int32 and a 16-bit capture measure the same dBFS.
    """
    a = np.asarray(x)
    dt = a.dtype
    if dt == np.float32:
        return a
    if dt.kind == "f":
        return a.astype(np.float32)
    scale = _INT_SCALE.get(dt)
    if scale is not None:
        y = a.astype(np.float32)
        y *= np.float32(scale)  # in place: the same products, one array fewer
        return y
    if dt == np.uint8:
        return (a.astype(np.float32) - np.float32(128.0)) * np.float32(2.0**-7)
    raise ValueError(
        f"unsupported sample type {dt}: give int8/uint8/int16/int32 PCM or float samples"
    )


@overload
def power_dbfs(mean_square: float) -> float: ...
@overload
def power_dbfs(mean_square: np.ndarray) -> np.ndarray: ...
def power_dbfs(mean_square: float | np.ndarray) -> float | np.ndarray:
    """Level of a mean square (power) in dBFS: ``10·log10(ms)``, floored, NaN -> floor."""
    if isinstance(mean_square, np.ndarray):
        return 10.0 * np.log10(np.fmax(mean_square, _POWER_FLOOR))
    ms = float(mean_square)
    return 10.0 * math.log10(ms) if ms > _POWER_FLOOR else DBFS_FLOOR


@overload
def amplitude_dbfs(amplitude: float) -> float: ...
@overload
def amplitude_dbfs(amplitude: np.ndarray) -> np.ndarray: ...
def amplitude_dbfs(amplitude: float | np.ndarray) -> float | np.ndarray:
    """Level of an RMS or peak amplitude in dBFS: ``20·log10(a)``, floored, NaN -> floor."""
    if isinstance(amplitude, np.ndarray):
        return 20.0 * np.log10(np.fmax(np.abs(amplitude), _AMPLITUDE_FLOOR))
    a = abs(float(amplitude))
    return 20.0 * math.log10(a) if a > _AMPLITUDE_FLOOR else DBFS_FLOOR


def rms_dbfs(x: ArrayLike) -> float:
    """RMS level of a block of samples in dBFS (floored; an empty block is the floor)."""
    a = to_float32(x).astype(np.float64).ravel()
    return power_dbfs(float(np.dot(a, a)) / a.size) if a.size else DBFS_FLOOR


class FrameFeatures(NamedTuple):
    """Per-frame measurements of a block of frames, one entry per frame. A named tuple: a
    live pass builds three of them (both parties measured at once, then split), and a
    frozen dataclass costs several times as much to build."""

    rms_dbfs: np.ndarray  # (n,) float64
    peak_dbfs: np.ndarray  # (n,) float64
    clipped: np.ndarray  # (n,) int64: samples with |x| >= clip_level
    energy: np.ndarray  # (n,) float64: mean square, the power the dB values come from
    frame_len: int

    @property
    def clipped_ratio(self) -> np.ndarray:
        """Fraction of each frame's samples that are clipped."""
        return self.clipped / self.frame_len


def frame_features(frames: np.ndarray, clip_level: float) -> FrameFeatures:
    """Level, peak and clipped-sample count of every row of ``frames`` ``(n, L)``, at once.

    Vectorised over the whole block because the pipeline's per-frame loop is in Python; the
    energy is accumulated in float64 so a quiet frame's level is exact to well under 0.01 dB.
    """
    f = np.asarray(frames)
    if f.ndim != 2:
        raise ValueError(f"frame_features takes (n_frames, frame_len) frames, got {f.shape}")
    mag = np.abs(f)
    energy = np.einsum("ij,ij->i", f, f, dtype=np.float64) / max(f.shape[1], 1)
    if f.shape[1] and f.shape[0]:
        peaks = np.maximum.reduce(mag, axis=1)
        # Counting is only needed when some sample reaches the clip level (compared as the
        # count compares: in the samples' own precision).
        if np.maximum.reduce(peaks) >= clip_level:
            clipped = np.count_nonzero(mag >= clip_level, axis=1).astype(np.int64)
        else:
            clipped = np.zeros(f.shape[0], np.int64)
        # amplitude_dbfs, inlined: the peaks are magnitudes already.
        peak_dbfs = 20.0 * np.log10(np.fmax(peaks, _AMPLITUDE_FLOOR, dtype=np.float64))
    else:
        peak_dbfs = amplitude_dbfs(np.zeros(f.shape[0]))
        clipped = np.count_nonzero(mag >= clip_level, axis=1).astype(np.int64)
    rms = 10.0 * np.log10(np.fmax(energy, _POWER_FLOOR))  # power_dbfs, inlined
    return FrameFeatures(rms, peak_dbfs, clipped, energy, f.shape[1])


# ---------------------------------------------------------------------------------------------
# ITU-T P.56 method B active speech level

P56_TIME_CONSTANT_S = 0.03
"""Time constant of each of the two envelope smoothing stages."""
P56_HANGOVER_S = 0.2
"""A threshold stays 'active' this long after the envelope drops under it."""
P56_MARGIN_DB = 15.9
"""The active level is where the level over active samples is this far above the threshold."""

P56_STEPS_PER_OCTAVE = 8
"""Thresholds per octave (6.02 dB). P.56 uses one (c_j = 2^-15 .. 2^0 of full scale); finer
thresholds make the interpolated crossing more accurate, as sv56's interpolation intends."""
_MANTISSA_BITS = 3  # log2(P56_STEPS_PER_OCTAVE)
P56_LOWEST_OCTAVE = -15
"""The lowest threshold is 2^-15 of full scale: one LSB of 16-bit audio (−90.3 dBFS)."""
_N_THRESHOLDS = (1 - P56_LOWEST_OCTAVE) * P56_STEPS_PER_OCTAVE  # octaves 2^-15 .. 2^0
P56_CELL_S = 0.0005
"""Activity is decided per cell of this length (see :class:`ActiveLevelMeter`)."""


def p56_thresholds(steps_per_octave: int = P56_STEPS_PER_OCTAVE) -> np.ndarray:
    """Thresholds ``2^e · (1 + m/steps)`` for octaves ``e`` = −15..0, ascending.

    With ``steps_per_octave=1`` these are exactly P.56's ``c_j`` (its 16-bit thresholds 2^0 ..
    2^15 mapped onto [-1, 1)). The in-octave steps are linear in amplitude (0.5–1 dB apart for
    8 steps) so that a threshold index is read straight off a float's exponent and top mantissa
    bits; any ascending ladder is valid for the method, only its resolution matters.
    """
    e = np.arange(P56_LOWEST_OCTAVE, 1, dtype=np.float64)
    m = np.arange(steps_per_octave, dtype=np.float64) / steps_per_octave
    return (np.ldexp(1.0, e.astype(int))[:, None] * (1.0 + m[None, :])).ravel()


def p56_level_from_counts(
    energy: float, active: np.ndarray, thresholds: np.ndarray, n_samples: int
) -> tuple[float, float] | None:
    """(level dBFS, activity) from the P.56 statistics, or None if there is no active speech.

    ``energy`` is the sum of squares of all samples, ``active[j]`` the number of samples
    active for ``thresholds[j]``. With A_j = 10·log10(energy / a_j) and C_j = 20·log10(c_j),
    the level is A where A − C falls to the 15.9 dB margin, linearly interpolated in dB between
    the two thresholds that bracket the crossing (sv56 approaches the same point by bisection
    with a 0.5 dB tolerance). Shared by the streaming meter and the reference.
    """
    if n_samples <= 0 or energy <= 0.0 or not active[0] > 0:
        return None
    prev: tuple[float, float] | None = None  # (A, A - C) of the previous threshold
    level = None
    for j in range(len(thresholds)):
        a = int(active[j])
        if a == 0:
            break
        a_db = 10.0 * math.log10(energy / a)
        d = a_db - 20.0 * math.log10(float(thresholds[j]))
        if d <= P56_MARGIN_DB:
            if prev is None:
                level = a_db  # already under the margin at the lowest threshold
            else:
                pa, pd = prev
                level = pa + (pd - P56_MARGIN_DB) / (pd - d) * (a_db - pa)
            break
        prev = (a_db, d)
    if level is None:
        return None  # the margin is never reached: no speech-like activity to measure
    activity = min(1.0, energy / (n_samples * 10.0 ** (level / 10.0)))
    return level, activity


def _cell_size(hangover: int, target: int) -> int:
    """Largest divisor of ``hangover`` not above ``target`` (>= 1), so the hangover is a whole
    number of cells."""
    return max(d for d in range(1, max(1, target) + 1) if hangover % d == 0)


class ActiveLevelMeter:
    """Streaming ITU-T P.56 method B active speech level, identical however input is chunked.

    P.56 runs two one-pole smoothers over |x| (time constant 0.03 s) and, for every threshold
    c_j, counts a sample active if the envelope is >= c_j or was within the last 0.2 s
    (hangover). Done literally that is a Python loop per sample and threshold (the reference in
    ``bench/p56_reference.py``). Here:

    * The activity decisions are made per *cell* of ``cell_samples`` samples (default
      :data:`P56_CELL_S`, 0.5 ms; 1 = per sample, exactly as P.56): a cell is active for c_j if
      the envelope at the end of any of the last 0.2 s of cells (itself included) is >= c_j,
      and then all its samples count. This is the one approximation: an activity edge can move
      by less than one cell. Over every codec2-examples recording at 8 and 16 kHz, with and
      without inserted silences, it changed the level by at most 0.0012 dB (the tests hold it
      to 0.02 dB against the reference); ``cell_samples=1`` is exact but several times slower.
    * The envelope at each cell end is exact, from the closed form of the cascaded smoothers
      over a cell (one small matrix product gives every cell's input contribution) and a
      closed-form recursion across cells: with ``G = g^cell``,
      ``p_k = G^k (G·p_-1 + Σ_{m<=k} G^-m·P_m)`` and the same for ``q`` with
      ``R_m = Q_m + cell·(1−g)·G·p_{m−1}``. All terms are positive, so the cumulative sums
      cannot cancel; over a 1 s block the relative error stays ~1e-13.
    * The hangover is a sliding maximum of the cell envelopes (van Herk / Gil-Werman: two
      running maxima), which is exactly P.56's per-threshold hangover counter.
    * The thresholds are a histogram of that maximum, binned by the float's exponent and top
      mantissa bits (no logarithm); a_j is a suffix sum of the histogram.

    Only whole blocks of :attr:`_BLOCK_S` at fixed sample positions change the state; a read
    evaluates the pending partial block on the side. So the result is a function of the samples
    alone, bit for bit, whatever the chunking.
    """

    _BLOCK_S = 1.0

    def __init__(self, rate: int = 16000, cell_samples: int | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be a positive number of samples per second, got {rate}")
        self.rate = int(rate)
        g = math.exp(-1.0 / (self.rate * P56_TIME_CONSTANT_S))
        hang = math.floor(P56_HANGOVER_S * self.rate + 0.5)
        target = round(P56_CELL_S * self.rate) if cell_samples is None else cell_samples
        if target < 1:
            raise ValueError(f"cell_samples must be >= 1, got {cell_samples}")
        r = _cell_size(hang, target)
        self.cell_samples = r
        self._g = g
        self._big_g = g**r
        self._hold = hang // r  # hangover in cells
        self._cells = max(1, round(self._BLOCK_S * self.rate / r))  # cells per block
        self._block = self._cells * r
        # Zero-state contribution of a cell's samples to p and q at the cell's end.
        m = np.arange(r - 1, -1, -1, dtype=np.float64)  # samples before the cell end
        self._cell_weights = np.stack(
            [(1.0 - g) * g**m, (1.0 - g) ** 2 * (m + 1.0) * g**m], axis=1
        )  # (r, 2)
        k = np.arange(self._cells, dtype=np.float64)
        self._gk = self._big_g**k
        self._ginv = self._big_g ** (-k)
        self._thresholds = p56_thresholds()
        self._base = int(np.array(2.0**P56_LOWEST_OCTAVE).view(np.int64)) >> (52 - _MANTISSA_BITS)
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new measurement (e.g. a new call) starts from silence."""
        self._p = 0.0
        self._q = 0.0
        self._qhist = np.zeros(self._hold, dtype=np.float64)  # envelopes of the last cells
        self._counts = np.zeros(_N_THRESHOLDS + 1, dtype=np.int64)  # bin 0: below c_0
        self._energy = 0.0
        self._n = 0
        self._pending = np.zeros(self._block, dtype=np.float64)
        self._fill = 0
        self._cached: tuple[float, float] | None = None
        self._cache_valid = False

    @property
    def samples(self) -> int:
        """Samples measured since creation or the last reset."""
        return self._n + self._fill

    def process(self, x: ArrayLike) -> None:
        """Add samples (float in [-1, 1), or integer PCM)."""
        a = np.asarray(x)
        if a.dtype.kind in "iu":
            a = to_float32(a)
        if a.ndim != 1:
            a = a.ravel()
        fill = self._fill
        if fill + a.size < self._block:  # the common case: no block completes
            self._pending[fill : fill + a.size] = a
            self._fill = fill + a.size
            if a.size:
                self._cache_valid = False
            return
        pos = 0
        while pos < a.size:
            take = min(self._block - self._fill, a.size - pos)
            self._pending[self._fill : self._fill + take] = a[pos : pos + take]
            self._fill += take
            pos += take
            if self._fill == self._block:
                p, q, qhist, counts, energy = self._run(self._pending)
                self._p, self._q, self._qhist = p, q, qhist
                self._counts += counts
                self._energy += energy
                self._n += self._block
                self._fill = 0
        if a.size:
            self._cache_valid = False

    def _run(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray, float]:
        """One block from the committed state: new (p, q), cell history, histogram, energy.

        A partial block (a read between blocks) is zero-padded to whole cells; its last cell
        then counts only its real samples.
        """
        energy = float(np.dot(x, x))
        if not math.isfinite(energy):  # NaN/inf from a broken source must not poison the state
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
            energy = float(np.dot(x, x))
        n = x.size
        r = self.cell_samples
        nc = -(-n // r)
        if nc * r != n:
            x = np.concatenate((x, np.zeros(nc * r - n)))
        contrib = np.abs(x).reshape(nc, r) @ self._cell_weights  # (nc, 2): P_k, Q_k
        gk, ginv, big_g = self._gk[:nc], self._ginv[:nc], self._big_g
        p = gk * (big_g * self._p + np.cumsum(contrib[:, 0] * ginv))
        p_prev = np.empty(nc)
        p_prev[0] = self._p
        p_prev[1:] = p[:-1]
        rr = contrib[:, 1] + (r * (1.0 - self._g) * big_g) * p_prev
        q = gk * (big_g * self._q + np.cumsum(rr * ginv))
        # Hangover: the envelope maximum over each cell and the cells of the 0.2 s before it
        # (zero padding is neutral: the envelope is never negative).
        hold = self._hold
        win = hold + 1
        z = np.zeros(-(-(hold + nc) // win) * win)
        z[:hold] = self._qhist
        z[hold : hold + nc] = q
        zz = z.reshape(-1, win)
        pre = np.maximum.accumulate(zz, axis=1).ravel()
        suf = np.maximum.accumulate(zz[:, ::-1], axis=1)[:, ::-1].ravel()
        held = np.maximum(suf[:nc], pre[hold : hold + nc])
        # Threshold index straight from the float bits: exponent and top mantissa bits.
        idx = (held.view(np.int64) >> (52 - _MANTISSA_BITS)) - (self._base - 1)
        np.clip(idx, 0, _N_THRESHOLDS, out=idx)
        counts = np.bincount(idx, minlength=_N_THRESHOLDS + 1) * r
        counts[idx[-1]] -= nc * r - n  # the padded tail of a partial last cell
        qhist = z[nc : nc + hold].copy()
        return float(p[-1]), float(q[-1]), qhist, counts, energy

    def _result(self) -> tuple[float, float] | None:
        if self._cache_valid:
            return self._cached
        counts, energy, n = self._counts, self._energy, self._n
        if self._fill:
            _, _, _, c, e = self._run(self._pending[: self._fill])
            counts, energy, n = counts + c, energy + e, n + self._fill
        active = np.cumsum(counts[::-1])[::-1][1:]  # a_j: samples at or above threshold j
        result = p56_level_from_counts(energy, active, self._thresholds, n)
        self._cached, self._cache_valid = result, True
        return result

    @property
    def level_dbfs(self) -> float | None:
        """Active speech level in dBFS, or None while there is no active speech."""
        r = self._result()
        return None if r is None else r[0]

    @property
    def activity(self) -> float:
        """Fraction of the measured samples that are active speech (0 without speech)."""
        r = self._result()
        return 0.0 if r is None else r[1]
