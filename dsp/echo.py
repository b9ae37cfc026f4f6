"""Far-end coupling into the agent's microphone: echo and speaker leak.

When the customer's voice reaches the mic (laptop speakers, a loose earpiece, acoustic echo in
the headset) two things go wrong: the customer hears themselves, and a naive VAD takes the leak
for agent speech and reports talk-over on every customer turn. This estimator finds the leak
from frame energies alone, which is robust to the filtering and non-linearity of a real
acoustic path where waveform correlation is not:

* over the last ``window_frames`` frames in which the customer spoke, it correlates the mic's
  log-energy with the customer's, delayed by 0..``max_lag_frames`` frames;
* a leak shows as a strong positive correlation at the path's delay (turn-taking alone gives a
  negative one), and the coupling is the median mic/customer energy ratio at that delay;
* the pipeline then discounts mic energy that the coupling explains before it calls anything
  agent speech, and reports ``echo`` when the coupling exceeds the threshold (ERL too low).

The estimate is refreshed at segment boundaries (by frame index, never by block), so results do
not depend on chunking.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import FRAME_S

MIN_CORRELATION = 0.5
"""Log-energy correlation above which the mic is taken to carry the far end."""


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
        self._since_update = 0
        self.present = False
        """True while the mic carries the far end (correlation above MIN_CORRELATION)."""
        self.coupling_db = -math.inf
        """Mic energy relative to the delayed far-end energy, in dB (-ERL)."""
        self.delay_frames = 0
        self.correlation = 0.0

    def add(self, mic_db: np.ndarray, far_lagged_db: np.ndarray) -> None:
        """Keep far-end speech frames: the mic level and the far-end level at each delay
        (``far_lagged_db`` has shape ``(n, max_lag + 1)``)."""
        for k in range(len(mic_db)):
            row = self._kept % self.window
            self._far[row] = far_lagged_db[k]
            self._mic[row] = mic_db[k]
            self._kept += 1
        self._since_update += len(mic_db)

    def refresh(self) -> bool:
        """Re-estimate if enough new far-end speech arrived; True when it did. Called once per
        segment by frame index, so the estimate never depends on chunking."""
        if self._kept < self.min_far_frames or self._since_update < self.update_frames:
            return False
        self._since_update = 0
        self._update()
        return True

    def coupling_gain(self) -> float:
        """Linear energy gain from far end to mic while present, else 0."""
        if not self.present:
            return 0.0
        return 10.0 ** (self.coupling_db / 10.0)

    @property
    def delay_ms(self) -> float:
        return self.delay_frames * FRAME_S * 1000.0

    def _update(self) -> None:
        n = min(self._kept, self.window)
        mic = self._mic[:n]
        far = self._far[:n]
        m = mic - mic.mean()
        f = far - far.mean(axis=0)
        denom = np.sqrt(float(m @ m) * np.einsum("ij,ij->j", f, f))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.where(denom > 0, (m @ f) / denom, 0.0)
        lag = int(np.argmax(corr))
        self.correlation = float(corr[lag])
        self.delay_frames = lag
        self.coupling_db = float(np.median(mic - far[:, lag]))
        self.present = self.correlation >= MIN_CORRELATION
