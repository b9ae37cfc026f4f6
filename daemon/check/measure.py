"""The measurements of ``callwatch check``: pure functions of captured samples.

Kept apart from the device handling (:mod:`daemon.check.audio`) and from the verdicts
(:mod:`daemon.check.judge`) so every number the check reports can be tested on synthetic
signals (a 50 Hz hum, a DC step, a delayed copy of the test signal) without a sound server.
Numpy only; no clock, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp.levels import DBFS_FLOOR, ActiveLevelMeter, amplitude_dbfs, power_dbfs, rms_dbfs

FRAME_S = 0.02
"""Frame length of the noise-floor statistics (the pipeline's 20 ms frames)."""

MAINS_HZ = (50.0, 60.0)
HUM_HARMONICS = 5
"""Harmonics examined per mains frequency: ground loops and rectifiers put most of their hum
in the first few (50-250 Hz, 60-300 Hz)."""

TEST_BAND_HZ = (300.0, 3400.0)
"""The playback test signal's band (telephony speech band): every headset reproduces it and
it stays clear of mains hum."""


def frame_levels_dbfs(x: np.ndarray, rate: int) -> np.ndarray:
    """RMS level of every whole 20 ms frame."""
    n = max(1, round(FRAME_S * rate))
    k = len(x) // n
    if k == 0:
        return np.array([rms_dbfs(x)])
    f = np.asarray(x[: k * n], dtype=np.float64).reshape(k, n)
    return power_dbfs(np.mean(f * f, axis=1))


def noise_floor_dbfs(x: np.ndarray, rate: int) -> float:
    """Median 20 ms frame level: the steady background, robust to a cough or a click."""
    return float(np.median(frame_levels_dbfs(x, rate)))


def dc_offset(x: np.ndarray) -> float:
    """Mean sample value (fraction of full scale, signed)."""
    return float(np.mean(np.asarray(x, dtype=np.float64))) if len(x) else 0.0


def is_digital_silence(x: np.ndarray) -> bool:
    """Every sample exactly zero: a muted or disconnected source, not a quiet room."""
    return bool(len(x)) and not np.any(np.asarray(x))


def power_spectrum(x: np.ndarray, rate: int, seg_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Welch estimate (Hann, 50 % overlap) scaled so the bins sum to the mean square.

    One-second segments give 1 Hz bins: fine enough to resolve 50 from 60 Hz and every harmonic
    from its neighbours, with several segments averaged in a 3 s silence test.
    """
    x = np.asarray(x, dtype=np.float64)
    n = min(len(x), max(16, round(seg_s * rate)))
    w = np.hanning(n)
    hop = max(1, n // 2)
    starts = range(0, len(x) - n + 1, hop)
    acc = np.zeros(n // 2 + 1)
    count = 0
    for s in starts:
        seg = x[s : s + n]
        acc += np.abs(np.fft.rfft((seg - seg.mean()) * w)) ** 2
        count += 1
    psd = acc / max(count, 1) * 2.0 / (n * float(w @ w))
    return np.fft.rfftfreq(n, 1.0 / rate), psd


@dataclass(frozen=True, slots=True)
class Hum:
    """The strongest mains-hum component found."""

    mains_hz: float
    """50 or 60."""
    harmonic_hz: float
    """The harmonic standing out most (50, 100, 150, ... or 60, 120, ...)."""
    prominence_db: float
    """Its peak above the median of the neighbouring spectrum (±20 Hz, peak excluded)."""
    level_dbfs: float
    """Power of that harmonic as a tone level."""


def measure_hum(x: np.ndarray, rate: int) -> Hum | None:
    """Mains hum: for 50 and 60 Hz and their first harmonics, the peak-to-neighbourhood ratio.

    ``None`` for input too short to resolve the harmonics (under 0.5 s) or digital silence.
    """
    if len(x) < rate // 2 or is_digital_silence(x):
        return None
    freqs, psd = power_spectrum(x, rate)
    df = float(freqs[1] - freqs[0])
    tiny = 1e-30
    best: Hum | None = None
    for mains in MAINS_HZ:
        for h in range(1, HUM_HARMONICS + 1):
            f = mains * h
            if f + 25 * df >= rate / 2:
                break
            d = np.abs(freqs - f)
            peak_bins = d <= max(1.5, 1.5 * df)
            around = (d >= 4.0) & (d <= 20.0)
            if not peak_bins.any() or around.sum() < 4:
                continue
            local = float(np.median(psd[around]))
            peak = float(psd[peak_bins].max())
            prominence = 10.0 * math.log10((peak + tiny) / (local + tiny))
            # A Hann-windowed tone spreads over ~3 bins: sum them, minus the local floor.
            tone = float(np.sum(psd[d <= 2.5 * df]) - local * np.count_nonzero(d <= 2.5 * df))
            level = power_dbfs(max(tone, 0.0))
            if best is None or prominence > best.prominence_db:
                best = Hum(mains, f, prominence, level)
    return best


@dataclass(frozen=True, slots=True)
class SpeechMeasure:
    """The speech test: active level, clipping and the loudest moment."""

    active_dbfs: float | None
    activity: float
    peak_dbfs: float
    clipped_samples: int
    samples: int

    @property
    def clipped_ratio(self) -> float:
        return self.clipped_samples / self.samples if self.samples else 0.0


def measure_speech(x: np.ndarray, rate: int, clip_level: float) -> SpeechMeasure:
    """P.56 active level (the level the daemon's too-quiet/too-loud rules use) and clipping."""
    x = np.asarray(x, dtype=np.float32)
    meter = ActiveLevelMeter(rate)
    meter.process(x)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    clipped = int(np.count_nonzero(np.abs(x) >= clip_level))
    return SpeechMeasure(meter.level_dbfs, meter.activity, amplitude_dbfs(peak), clipped, len(x))


def band_limited_noise(rate: int, seconds: float, level_dbfs: float, seed: int = 7) -> np.ndarray:
    """The playback test burst: noise in the speech band with 20 ms fades, at ``level_dbfs``.

    Noise (not a tone or sweep) gives one sharp cross-correlation peak, so the delay is exact
    and a room's reflections cannot alias it.
    """
    n = round(seconds * rate)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / rate)
    spec[(f < TEST_BAND_HZ[0]) | (f > TEST_BAND_HZ[1])] = 0
    y = np.fft.irfft(spec, n)
    fade = min(n // 2, round(0.02 * rate))
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))
    y[:fade] *= ramp
    y[n - fade :] *= ramp[::-1]
    y *= 10 ** (level_dbfs / 20) / math.sqrt(float(np.mean(y * y)))
    return y.astype(np.float32)


@dataclass(frozen=True, slots=True)
class Coupling:
    """How much of a played reference is in a capture, and how late."""

    detected: bool
    coupling_db: float
    """Energy of the captured copy relative to the reference (20·log10 of the path gain);
    when not detected, an upper bound (the measurement's noise)."""
    delay_samples: int
    """Where the reference starts in the capture."""
    correlation: float
    """Normalised correlation of the reference with the capture at that delay (0..1)."""


def measure_coupling(reference: np.ndarray, capture: np.ndarray, rate: int,
                     min_peak_to_noise: float = 8.0) -> Coupling:
    """Find ``reference`` in ``capture`` by cross-correlation (FFT) and estimate the path gain.

    The impulse response is estimated in the frequency domain over the reference's band
    (capture spectrum / reference spectrum), its peak is the delay, and the coupling is the
    energy of the response within -5..+50 ms of the peak (an acoustic path spreads over a few
    ms of reflections). A peak that does not stand ``min_peak_to_noise`` times above the median
    absolute response is noise: then the coupling is an upper bound, 6 dB above that noise.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cap = np.asarray(capture, dtype=np.float64)
    n = len(cap)
    if n < len(ref) or not len(ref):
        return Coupling(False, DBFS_FLOOR, 0, 0.0)
    size = 1 << (n + len(ref) - 1).bit_length()
    X = np.fft.rfft(ref, size)
    Y = np.fft.rfft(cap - cap.mean(), size)
    f = np.fft.rfftfreq(size, 1.0 / rate)
    band = (f >= TEST_BAND_HZ[0]) & (f <= TEST_BAND_HZ[1])
    px = np.abs(X) ** 2
    eps = 1e-3 * float(px[band].mean()) if band.any() else 1e-12
    H = np.where(band, Y * np.conj(X) / (px + eps), 0)
    h = np.fft.irfft(H, size)[: n - len(ref) + 1]  # causal lags where the whole ref fits
    if not len(h):
        return Coupling(False, DBFS_FLOOR, 0, 0.0)
    k = int(np.argmax(np.abs(h)))
    noise = float(np.median(np.abs(h))) + 1e-30
    lo, hi = max(0, k - round(0.005 * rate)), min(len(h), k + round(0.05 * rate))
    hw = np.zeros(size)
    hw[lo:hi] = h[lo:hi]
    Hw = np.fft.rfft(hw)
    # Energy gain of the windowed path for the reference's own spectrum.
    gain = float(np.sum(np.abs(Hw[band]) ** 2 * px[band]) / max(float(px[band].sum()), 1e-30))
    seg = cap[k : k + len(ref)]
    den = math.sqrt(float(seg @ seg) * float(ref @ ref)) or 1e-30
    ncc = abs(float(seg @ ref)) / den
    detected = abs(h[k]) >= min_peak_to_noise * noise
    if detected:
        return Coupling(True, power_dbfs(gain), k, ncc)
    # Not found: bound it by what noise alone would have produced over the same window.
    bound = noise**2 * (hi - lo) * 4.0 * (size / max(int(band.sum()), 1)) / 2.0
    return Coupling(False, power_dbfs(bound), k, ncc)
