"""What the pipeline derives from a block's samples alone, before any state is consulted:
clean input, and the per-frame arrays (features, PCM for the VAD, clicks, far-end delay
lines) that the frame loop and the gates read for a block or a slice of one."""

from __future__ import annotations

import numpy as np

from dsp.levels import FrameFeatures, to_float32

_min, _max = np.minimum.reduce, np.maximum.reduce
"""The reductions without ndarray.min/max's Python wrappers (a few microseconds a call)."""


def sanitize(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] whatever arrived: NaN and infinities from a broken driver or
    file must never reach the detectors (they would poison every running mean)."""
    y = to_float32(x)
    if x.dtype.kind in "iu" or (y.size and _min(y) >= -1.0 and _max(y) <= 1.0):
        # Integer PCM scales into [-1, 1); in-range floats (no NaN passes the comparisons)
        # come back as they are. Two reductions are cheaper than the checks and the clip.
        return y
    if not np.isfinite(y).all():
        y = np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(y, -1.0, 1.0, dtype=np.float32)


def median(x: np.ndarray) -> float:
    """np.median without its overhead (called once per segment and party)."""
    n = x.size
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, (lo, hi))
    return 0.5 * float(part[lo] + part[hi])


def medians(x: np.ndarray) -> np.ndarray:
    """``np.median(x, axis=0)`` of a 2-D array of finite values without its overhead, bit
    for bit (the middle value, or the two middle values' mean, as np.median takes them);
    NaN is not looked for, as np.median would."""
    n = x.shape[0]
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, (lo, hi), axis=0)
    return 0.5 * (part[lo] + part[hi])


class Block:
    """Per-frame arrays of a block (or a slice of one) that depend only on the samples."""

    __slots__ = ("a_clicks", "a_not_speech", "c_clicks", "c_not_speech", "fa", "far_lagged",
                 "fc", "pa", "pc", "tones")

    def __init__(self, fa: FrameFeatures, fc: FrameFeatures, pa: np.ndarray, pc: np.ndarray,
                 a_clicks: np.ndarray, c_clicks: np.ndarray) -> None:
        self.fa, self.fc, self.pa, self.pc = fa, fc, pa, pc
        self.a_clicks, self.c_clicks = a_clicks, c_clicks
        self.a_not_speech, self.c_not_speech = a_clicks, c_clicks
        """What the speech gates leave out: clicks, and the pipeline adds signalling tones."""
        self.tones = np.zeros(len(a_clicks), dtype=bool)
        """Frames in which either party's line carries a signalling tone (:mod:`dsp.tones`)."""
        self.far_lagged = np.zeros((0, 0))

    def slice(self, start: int, end: int) -> Block:
        out = Block(_slice_features(self.fa, start, end), _slice_features(self.fc, start, end),
                    self.pa[start:end], self.pc[start:end], self.a_clicks[start:end],
                    self.c_clicks[start:end])
        out.tones = self.tones[start:end]
        out.a_not_speech = self.a_not_speech[start:end]
        out.c_not_speech = self.c_not_speech[start:end]
        out.far_lagged = self.far_lagged[start:end]
        return out


def _slice_features(f: FrameFeatures, start: int, end: int) -> FrameFeatures:
    return FrameFeatures(f.rms_dbfs[start:end], f.peak_dbfs[start:end], f.clipped[start:end],
                         f.energy[start:end], f.frame_len)


def split_features(f: FrameFeatures, n: int) -> tuple[FrameFeatures, FrameFeatures]:
    """The features of two parties' blocks of ``n`` frames measured stacked (one call for
    both: a live block is two frames, and each numpy call costs more than its work), apart."""
    return _slice_features(f, 0, n), _slice_features(f, n, 2 * n)


def join_features(parts: list[FrameFeatures]) -> FrameFeatures:
    """The features of consecutive runs of frames as one run."""
    cat = np.concatenate
    return FrameFeatures(cat([f.rms_dbfs for f in parts]), cat([f.peak_dbfs for f in parts]),
                         cat([f.clipped for f in parts]), cat([f.energy for f in parts]),
                         parts[0].frame_len)
