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

Updates happen every ``update_frames`` frames by frame index, never by block, so results do
not depend on chunking.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import FRAME_S

MIN_CORRELATION = 0.5
"""Log-energy correlation above which the mic is taken to carry the far end."""


class EchoEstimator:
    """Running estimate of the far-end coupling (dB) and delay (frames) into the mic."""

    def __init__(
        self,
        max_lag_frames: int,
        window_frames: int = 400,
        update_frames: int = 25,
        min_far_frames: int = 100,
    ) -> None:
        self.max_lag = max_lag_frames
        self.window = window_frames
        self.update_frames = update_frames
        self.min_far_frames = min_far_frames
        size = window_frames + max_lag_frames
        self._size = size
        self._mic_db = np.zeros(size)
        self._far_db = np.zeros(size)
        self._far_speech = np.zeros(size, dtype=bool)
        self._n = 0
        self.present = False
        """True while the mic carries the far end (correlation above MIN_CORRELATION)."""
        self.coupling_db = -math.inf
        """Mic energy relative to the delayed far-end energy, in dB (-ERL)."""
        self.delay_frames = 0
        self.correlation = 0.0

    def step(self, mic_db: float, far_db: float, far_speech: bool) -> bool:
        """Record one frame; returns True when the estimate was refreshed on this frame."""
        k = self._n % self._size
        self._mic_db[k] = mic_db
        self._far_db[k] = far_db
        self._far_speech[k] = far_speech
        self._n += 1
        if self._n % self.update_frames or self._n < self._size:
            return False
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
        # Unroll the ring into time order: oldest first.
        start = self._n % self._size
        order = np.r_[start : self._size, 0:start]
        mic = self._mic_db[order]
        far = self._far_db[order]
        speech = self._far_speech[order]
        idx = np.flatnonzero(speech[self.max_lag :]) + self.max_lag
        if idx.size < self.min_far_frames:
            self.present = False
            return
        m = mic[idx]
        m = m - m.mean()
        m_norm = math.sqrt(float(m @ m))
        best_corr, best_lag = -1.0, 0
        for lag in range(self.max_lag + 1):
            f = far[idx - lag]
            f = f - f.mean()
            denom = m_norm * math.sqrt(float(f @ f))
            corr = float(m @ f) / denom if denom > 0 else 0.0
            if corr > best_corr:
                best_corr, best_lag = corr, lag
        self.correlation = best_corr
        self.delay_frames = best_lag
        self.coupling_db = float(np.median(mic[idx] - far[idx - best_lag]))
        self.present = best_corr >= MIN_CORRELATION
