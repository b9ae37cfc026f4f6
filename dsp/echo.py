"""Far-end coupling into the agent's microphone: echo and speaker leak.

When the customer's voice reaches the mic (laptop speakers, a loose earpiece, acoustic echo in
the headset) two things go wrong: the customer hears themselves, and a naive VAD takes the leak
for agent speech and reports talk-over on every customer turn. This estimator finds the leak
from frame energies alone, which is robust to the filtering and non-linearity of a real
acoustic path where waveform correlation is not:

* over the last ``window_frames`` frames in which the customer spoke, it correlates the mic's
  log-energy with the customer's, delayed by 0..``max_lag_frames`` frames;
* a leak shows as a strong positive correlation at the path's delay on the frames where the
  mic is least above the far end, and as a mic noise floor that rises with the far-end level
  (:func:`_floor_slope`); the coupling is a low percentile of the mic/far-end energy ratio at
  that delay (:data:`COUPLING_PERCENTILE`);
* the pipeline then discounts mic energy that the coupling explains before it calls anything
  agent speech, and reports ``echo`` when the coupling exceeds the threshold (ERL too low).

The estimate is refreshed at segment boundaries (by frame index, never by block), so results do
not depend on chunking.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import FRAME_S
from dsp.block import medians
from dsp.levels import DBFS_FLOOR

MIN_CORRELATION = 0.6
"""Log-energy correlation (on the leak-dominated half of the frames) for a leak to be found."""

KEEP_CORRELATION = 0.5
"""Once found, a leak is kept while the correlation stays above this (hysteresis)."""

MIN_SLOPE, MAX_SLOPE = 0.3, 2.0
"""The mic's floor must rise with the far end (dB per dB); below its noise floor it cannot,
so a real leak measures between about 0.3 and 1."""

MAX_COUPLING_DB = 0.0
"""A leak is quieter at the mic than the far end it comes from (an ERL above 0 dB); a "leak"
louder than its source is the agent's own voice, which early in a call, with little far-end
speech kept, can correlate with the customer's by chance (both talk in the same exchanges)."""

COUPLING_PERCENTILE = 35.0
"""The coupling is this percentile of the mic-minus-far-end levels at the leak's delay. Agent
speech, babble and keystrokes only add energy to the leak, so the leak itself is the lower
part of those levels; the median lands on double talk in a call where the agent talks over
the customer often (a -19 dB leak measured -2.5 dB in a heated call with babble, and the
gate then hid the agent). Not the lowest part either: a laptop speaker passes the far end's
low vowels several dB weaker (:data:`LEAK_EDGE_DB`)."""

ECHO_MARGIN_DB = 9.0
"""Agent speech must stand this far above the far-end leak the echo estimator predicts."""

ECHO_DECIDED_FAR_FRAMES = 100
"""See :attr:`EchoEstimator.undecided`: two seconds of far-end speech."""

LEAK_EDGE_DB = 3.0
"""The mic is never quieter than the leak alone, so with a leak the mic-minus-far-end levels
have a sharp lower edge at the coupling: their 10th and 25th percentiles lie within this
(0.9-2.7 dB measured on leaking calls, 20 ms frames). Without a leak the lower tail runs on
down to the mic's noise floor (the agent silent while the customer talks), whatever the
correlation that the agent's own turns gave by chance."""

LEAK_EDGE_FAINT_DB = 4.5
FAINT_COUPLING_DB = -10.0
"""A faint leak (coupling at or under FAINT_COUPLING_DB) is found with a lower edge up to
LEAK_EDGE_FAINT_DB wide: it sits near the room's noise, and keystrokes or a fan add to its
quieter frames. Measured on a leaking call with typing (development set): edge 4.2-4.8 dB
for 20 s of far-end speech at a -20 dB coupling, found only after 25 s. Chance correlations
without a leak that came this sharp all measured a coupling of -2 to -4 dB (the agent's own
turns, at the far end's level)."""

LEAK_EDGE_KEEP_DB = 6.0
"""Once found, a leak is kept while the edge stays this sharp (hysteresis). Laptop speakers
pass little under 300 Hz, so the far end's low-pitched vowels reach the mic several dB weaker
than its other frames: measured on a leaking call with typing (development set), the edge
widened to 4.7-5.6 dB for stretches of the call while the correlation stayed at 0.8 and the
slope at 0.7-0.8. At 4.5 dB the leak was lost there, and the far end in the mic counted as
the agent's speech (their speech time 46 % over the truth; 11 % once kept)."""

SLOPE_BIN_DB = 3.0
SLOPE_MIN_BIN_FRAMES = 8
SLOPE_MIN_SPAN_DB = 9.0


class EchoEstimator:
    """Running estimate of the far-end coupling (dB) and delay (frames) into the mic.

    Only frames in which the far end speaks are kept (the last ``window_frames`` of them, with
    the far-end levels at every candidate delay), so the estimate survives long agent turns and
    is ready as soon as the customer talks again.
    """

    def __init__(
        self,
        max_lag_frames: int,
        window_frames: int = 400,
        update_frames: int = 10,
        min_far_frames: int = 50,
    ) -> None:
        self.max_lag = max_lag_frames
        self.window = window_frames
        self.update_frames = update_frames
        self.min_far_frames = min_far_frames
        lags = max_lag_frames + 1
        self._mic = np.zeros(window_frames)
        self._far = np.zeros((window_frames, lags))
        """Row k: the far-end level at delays 0..max_lag for the k-th kept frame."""
        self._kept = 0
        self._judged = 0
        self._since_update = 0
        self.present = False
        """True while the mic carries the far end (correlation above MIN_CORRELATION)."""
        self.coupling_db = -math.inf
        """Mic energy relative to the delayed far-end energy, in dB (-ERL)."""
        self.delay_frames = 0
        self.correlation = 0.0
        self.slope = 0.0
        self.edge_db = math.inf
        """Spread of the lower tail of mic-minus-far-end (see LEAK_EDGE_DB)."""
        self.estimates = 0
        """Estimates made so far: until the first, whether the mic carries the far end is
        not known (see :class:`dsp.detectors.talkover.TalkOver`)."""

    def add(self, mic_db: np.ndarray, far_lagged_db: np.ndarray) -> None:
        """Keep far-end speech frames: the mic level and the far-end level at each delay
        (``far_lagged_db`` has shape ``(n, max_lag + 1)``)."""
        n = len(mic_db)
        # Into the rings at the next rows, wrapping: as two slices (only the newest
        # ``window`` frames can stay).
        keep = min(n, self.window)
        pos = (self._kept + n - keep) % self.window
        first = min(keep, self.window - pos)
        for src, ring in ((far_lagged_db, self._far), (mic_db, self._mic)):
            new = src[n - keep :]
            ring[pos : pos + first] = new[:first]
            ring[: keep - first] = new[first:]
        self._kept += n
        self._since_update += n

    def refresh(self) -> bool:
        """Re-estimate if enough new far-end speech arrived; True when it did. Called once per
        segment by frame index, so the estimate never depends on chunking."""
        # Often while the estimate is young, then every few seconds of far-end speech.
        every = self.update_frames if self._kept < self.window else 15 * self.update_frames
        if self._kept < self.min_far_frames or self._since_update < every:
            return False
        self._since_update = 0
        self._update()
        return True

    @property
    def far_frames(self) -> int:
        """Far-end speech frames the last estimate was made on (0 before the first): read
        only at estimates, which come at segment ends, so it is the same however the audio
        is chunked."""
        return self._judged

    @property
    def undecided(self) -> bool:
        """Whether it cannot say yet if the mic carries the far end: no estimate yet, or no
        leak found in under :data:`ECHO_DECIDED_FAR_FRAMES` of far-end speech (the first
        estimates, on a second of it, often lack the span of levels the leak's slope is
        judged on). Early in a daemon's life, laptop speakers leaking the far end into a mic
        that is otherwise silent look like the agent talking; what depends on telling them
        apart waits for this (talk-over reports, the agent's speech time)."""
        return self.estimates == 0 or (not self.present
                                       and self.far_frames < ECHO_DECIDED_FAR_FRAMES)

    def leak_floor(self, far_lagged_db: np.ndarray) -> np.ndarray:
        """Per frame, the level agent speech must reach to stand out of the leak the estimate
        predicts (:data:`ECHO_MARGIN_DB` over it), from the far end's levels at every delay
        (``(n, max_lag + 1)``); the estimate must be present. The loudest of the delay and
        its two neighbours is taken: the path's delay wanders by a frame."""
        d = self.delay_frames
        near = np.maximum.reduce(far_lagged_db[:, max(0, d - 1) : min(self.max_lag + 1, d + 2)],
                                 axis=1)
        return near + (self.coupling_db + ECHO_MARGIN_DB)

    def coupling_gain(self) -> float:
        """Linear energy gain from far end to mic while present, else 0."""
        if not self.present:
            return 0.0
        return 10.0 ** (self.coupling_db / 10.0)

    @property
    def delay_ms(self) -> float:
        return self.delay_frames * FRAME_S * 1000.0

    def _update(self) -> None:
        self.estimates += 1
        self._judged = self._kept
        n = min(self._kept, self.window)
        mic = self._mic[:n, None]
        far = self._far[:n]
        # Leak-dominated frames are those where the mic is least above the delayed far end:
        # there the mic follows the far end dB for dB. Agent speech and noise only ever add
        # energy, so they sit in the upper half of the residual and are left out.
        resid = mic - far  # dB levels, floored: never NaN
        w = (resid <= medians(resid)).astype(np.float64)
        count = w.sum(axis=0)
        mx = (w * far).sum(axis=0) / count
        my = (w * mic).sum(axis=0) / count
        dx = far - mx
        dy = mic - my
        cov = (w * dx * dy).sum(axis=0)
        vx = (w * dx * dx).sum(axis=0)
        vy = (w * dy * dy).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(vx * vy > 0, cov / np.sqrt(vx * vy), 0.0)
        lag = int(np.argmax(corr))
        self.correlation = float(corr[lag])
        self.delay_frames = lag
        self.coupling_db = float(np.percentile(resid[:, lag], COUPLING_PERCENTILE))
        self.slope = _floor_slope(far[:, lag], mic[:, 0])
        q10, q25 = np.percentile(resid[:, lag], (10.0, 25.0))
        self.edge_db = float(q25 - q10)
        sharp = self.edge_db <= LEAK_EDGE_DB or (
            self.edge_db <= LEAK_EDGE_FAINT_DB and self.coupling_db <= FAINT_COUPLING_DB)
        found = (self.correlation >= MIN_CORRELATION and MIN_SLOPE <= self.slope <= MAX_SLOPE
                 and self.coupling_db <= MAX_COUPLING_DB and sharp)
        self.present = found or (self.present and self.correlation >= KEEP_CORRELATION
                                 and self.edge_db <= LEAK_EDGE_KEEP_DB)


def _floor_slope(far_db: np.ndarray, mic_db: np.ndarray) -> float:
    """How the mic's lower quartile rises with the far-end level, in dB per dB.

    The split on the residual above finds the delay but biases the correlation (selecting on
    a difference correlates its terms). This check has no such bias: frames are binned by the
    far end's level alone, and in each bin the mic's lower quartile is taken. With a leak the
    quartile climbs dB for dB with the far end; room noise or the agent's own voice do not
    depend on the far end, so without a leak it stays flat. Returns 0 when the far end does
    not span enough levels to tell.
    """
    order = np.argsort(far_db, kind="stable")
    far_sorted = far_db[order]
    mic_sorted = mic_db[order]
    n = far_sorted.size
    lo, hi = far_sorted[int(0.05 * (n - 1))], far_sorted[int(0.95 * (n - 1))]
    if hi - lo < SLOPE_MIN_SPAN_DB:
        return 0.0
    edges = np.searchsorted(far_sorted, np.arange(lo, hi + SLOPE_BIN_DB, SLOPE_BIN_DB))
    xs, ys = [], []
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        if b - a >= SLOPE_MIN_BIN_FRAMES:
            xs.append(float(far_sorted[a:b].mean()))
            k = (b - a - 1) // 4
            ys.append(float(np.partition(mic_sorted[a:b], k)[k]))
    if len(xs) < 3 or xs[-1] - xs[0] < SLOPE_MIN_SPAN_DB:
        return 0.0
    x = np.asarray(xs)
    y = np.asarray(ys)
    dx = x - x.mean()
    return float(dx @ (y - y.mean()) / (dx @ dx))


class FarDelayLine:
    """The far end's frame levels at every delay up to ``max_lag`` frames, for each frame of
    a block (what the echo estimator and the leak floor read), carried from block to block."""

    def __init__(self, max_lag: int) -> None:
        self._tail = np.full(max_lag + 1, DBFS_FLOOR)
        self._indices: dict[tuple[int, int], np.ndarray] = {}

    def resize(self, max_lag: int) -> None:
        """A new delay range (a reload), keeping the far end's recent levels."""
        tail = np.full(max_lag + 1, DBFS_FLOOR)
        keep = min(tail.size, self._tail.size)
        tail[tail.size - keep :] = self._tail[self._tail.size - keep :]
        self._tail = tail

    def lagged(self, far_dbfs: np.ndarray) -> np.ndarray:
        """``(n, lags)``: for each of the block's ``n`` frame levels, the far end's level at
        every delay (the newest first)."""
        lags = self._tail.size
        hist = np.concatenate((self._tail, far_dbfs))
        self._tail = hist[-lags:]
        return hist[self._index(far_dbfs.size, lags)]

    def _index(self, n: int, lags: int) -> np.ndarray:
        """Where each of ``n`` frames finds its levels in the history (``lags`` older levels,
        then the block's): built once per block size."""
        key = (n, lags)
        idx = self._indices.get(key)
        if idx is None:
            if len(self._indices) > 8:
                self._indices.clear()
            idx = lags + np.arange(n)[:, None] - np.arange(lags)[None, :]
            self._indices[key] = idx
        return idx
