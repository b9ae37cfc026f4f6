"""Hearing safety on the far end: the thresholds and the A-weighted level meter.

What reaches the agent's ear is the far-end stream (the customer's line, hold music, tones,
feedback) played by the headset. Its sound pressure depends on the headset's sensitivity and
the volume the agent chose, which the digital signal alone cannot tell: ``dbspl_at_0dbfs``
(the dB SPL at the ear that a 0 dBFS RMS far-end signal produces, so a full-scale sine gives
``dbspl_at_0dbfs - 3.01``) turns dBFS into dB SPL. Without it every figure stays relative to
full scale and is labelled uncalibrated, never presented as dB SPL.

A-weighting follows IEC 61672-1 (the weighting of EU 2003/10/EC's LEX,8h). It is applied in
the frequency domain on each 20 ms frame (Parseval: the weighted power spectrum sums to the
frame's A-weighted mean square), which costs one real FFT per frame instead of a per-sample
IIR loop in Python. Frame leakage only matters for a tone off a 50 Hz bin at the steep low
end of the curve, where A-weighting already removes most of its energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

# numpy.fft is imported by name, at import time: numpy loads it lazily otherwise, on first
# use, and a daemon out of descriptors (a flood of clients) must not fail that import in
# the middle of a call.
from numpy.fft import rfft, rfftfreq

from dsp import ANALYSIS_RATE, FRAME_LEN
from dsp.settings import setting

FULL_SCALE_SINE_DBFS = -3.0103
"""RMS level of a full-scale sine in this project's dBFS (DESIGN.md §4.1)."""

MIN_DBSPL_AT_0DBFS = 60.0
"""A sensitivity below this is a typo (or a dBFS figure), not a headset."""


@dataclass(frozen=True, slots=True)
class HearingSettings:
    """The ``[hearing]`` table: sensitivity, acoustic-shock, loud-far-end and exposure limits.

    Sources (DESIGN.md §5): ITU-T P.360 / G.616 and the headset vendors' anti-shock limiters
    for sudden far-end bursts; EU 2003/10/EC for the daily exposure action values.
    """

    dbspl_at_0dbfs: float = setting(
        0.0, 0.0, 140.0,
        "dB SPL at the ear for a 0 dBFS RMS far-end signal (headset sensitivity at the agent's "
        "volume); 0 = uncalibrated: exposure is then never reported in dB SPL",
    )
    shock_burst_dbfs: float = setting(
        -5.0, -30.0, 0.0,
        "a far-end 10 ms level at or above this, after a fast rise, is an acoustic shock",
    )
    shock_rise_db: float = setting(
        15.0, 3.0, 80.0, "rise over the 200 ms before that a burst needs (dB)"
    )
    shock_click_peak_dbfs: float = setting(
        -0.1, -20.0, 0.0,
        "a far-end sample peak at or above this (at the rails: a clipped click) can be a shock",
    )
    shock_click_rise_db: float = setting(
        6.0, 3.0, 100.0, "rise of the 10 ms level over the 200 ms before that a click needs"
    )
    shock_tone_dbfs: float = setting(
        -9.0, -40.0, 0.0, "a tone (or feedback howl) at or above this far-end level is a shock"
    )
    shock_tone_ratio: float = setting(
        0.9, 0.5, 1.0, "share of a 20 ms window's power in one spectral peak that makes a tone"
    )
    shock_release_s: float = setting(
        0.5, 0.05, 10.0, "an acoustic shock is over after this long without a burst or tone"
    )
    loud_far_end_window_s: float = setting(
        5.0, 1.0, 60.0, "seconds of far-end audio the loud-far-end level (LAeq) is taken over"
    )
    loud_far_end_dba: float = setting(
        85.0, 60.0, 120.0,
        "calibrated: far-end LAeq at the ear above this (dB(A) SPL) is too loud",
    )
    loud_far_end_dbfs: float = setting(
        -15.0, -60.0, 0.0,
        "uncalibrated: far-end A-weighted LAeq above this (dBFS) is too loud",
    )
    exposure_lower_dba: float = setting(
        80.0, 60.0, 100.0, "daily exposure LEX,8h warning (EU lower action value, dB(A))"
    )
    exposure_upper_dba: float = setting(
        85.0, 60.0, 100.0, "daily exposure LEX,8h warning (EU upper action value, dB(A))"
    )

    def __post_init__(self) -> None:
        if 0.0 < self.dbspl_at_0dbfs < MIN_DBSPL_AT_0DBFS:
            raise ValueError(
                f"dbspl_at_0dbfs = {self.dbspl_at_0dbfs}: no headset is that quiet; give the "
                f"measured dB SPL of a 0 dBFS signal ({MIN_DBSPL_AT_0DBFS:g} or more), or 0 "
                "for uncalibrated"
            )
        if self.exposure_upper_dba < self.exposure_lower_dba:
            raise ValueError(
                f"exposure_upper_dba = {self.exposure_upper_dba} is below exposure_lower_dba = "
                f"{self.exposure_lower_dba}: the upper action value must be the higher one"
            )

    @property
    def sensitivity(self) -> float | None:
        """``dbspl_at_0dbfs``, or None when uncalibrated."""
        return self.dbspl_at_0dbfs if self.dbspl_at_0dbfs > 0 else None

    @property
    def calibrated(self) -> bool:
        return self.dbspl_at_0dbfs > 0


def a_weighting_db(freq_hz: np.ndarray) -> np.ndarray:
    """IEC 61672-1 A-weighting gain in dB at ``freq_hz`` (0 dB at 1 kHz; -inf at DC)."""
    f2 = np.asarray(freq_hz, dtype=np.float64) ** 2
    num = 12194.0**2 * f2**2
    den = (f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2)
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(num / den) + 2.0


@cache
def _bin_weights(n: int, rate: int) -> np.ndarray:
    """Per-bin factors of :func:`a_weighted_power` for frames of ``n`` samples: the A-weighting
    power gain times Parseval's one-sided scaling (2/n² inside, 1/n² at DC and Nyquist)."""
    freqs = rfftfreq(n, 1.0 / rate)
    gain = 10.0 ** (a_weighting_db(freqs) / 10.0)
    side = np.full(freqs.size, 2.0)
    side[0] = 1.0
    if n % 2 == 0:
        side[-1] = 1.0
    w = gain * side / float(n) ** 2
    w.setflags(write=False)
    return w


def frame_spectra(frames: np.ndarray) -> np.ndarray:
    """|rfft|² of each row of ``frames`` (rectangular window), float64."""
    spec = rfft(np.asarray(frames, dtype=np.float64), axis=-1)
    power = spec.real**2
    power += spec.imag**2  # in place: one temporary fewer, the same sums
    return power


def a_weighted_power(frames: np.ndarray, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """A-weighted mean square of each frame (rows of ``frames``), in full-scale units:
    10·log10 of it is the frame's A-weighted level in dBFS.

    Each row is summed on its own (numpy's pairwise sum), so a frame's value does not depend
    on how many frames came with it; a BLAS matrix-vector product rounds a row differently
    with the number of rows."""
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames.reshape(-1, FRAME_LEN)
    power = frame_spectra(frames)
    power *= _bin_weights(frames.shape[-1], rate)  # weighted in place, not into a copy
    return np.add.reduce(power, axis=-1)
