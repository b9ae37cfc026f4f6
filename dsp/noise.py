"""Background-noise measurement for one party.

Two views of the noise, for two jobs:

* :class:`MinimumFloor` follows the *quietest* frames (minimum statistics over a sliding
  window of two to three seconds). Speech must stand out of it to count as speech, which keeps
  steady noise (hum, fans, rain) from being taken for a voice.
* :class:`NoiseLevel` is the *power mean* of the frames in which the party is silent, the way
  headset vendors measure room noise ("noise while the agent is not talking"). It is what the
  noise alert, the SNR and the report use; fluctuating noise such as babble or typing raises it
  even though its minimum stays low.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.levels import DBFS_FLOOR


class MinimumFloor:
    """Sliding-window minimum of frame levels (dBFS) over the current and the last
    ``history`` segments, computed for a run of frames at once."""

    def __init__(self, history: int = 2) -> None:
        self._history: list[float] = []
        self._keep = history
        self._cur = math.inf

    def floors(self, levels_dbfs: np.ndarray) -> np.ndarray:
        """The floor at each of these frames (all inside the current segment)."""
        run = np.minimum.accumulate(levels_dbfs)
        np.minimum(run, self._cur, out=run)
        self._cur = float(run[-1])
        past = min(self._history, default=math.inf)
        if past < math.inf:
            np.minimum(run, past, out=run)
        return run

    def end_segment(self) -> None:
        self._history.append(self._cur)
        if len(self._history) > self._keep:
            del self._history[0]
        self._cur = math.inf


class NoiseLevel:
    """Power mean of a party's non-speech frames: a smoothed live value and a call total."""

    __slots__ = ("_alpha", "_call_energy", "_call_frames", "_smoothed", "frames_seen")

    def __init__(self, time_constant_frames: int = 50) -> None:
        self._alpha = 1.0 / max(1, time_constant_frames)
        self._smoothed = 0.0
        self.frames_seen = 0
        self._call_energy = 0.0
        self._call_frames = 0

    def add(self, energies: np.ndarray) -> None:
        """Add non-speech frames' mean-square energies, oldest first (an exponential average,
        evaluated in closed form for the whole run)."""
        n = energies.size
        if n == 0:
            return
        x = energies.astype(np.float64)
        if self.frames_seen == 0:
            self._smoothed = float(x[0])
            x = x[1:]
        if x.size:
            keep = 1.0 - self._alpha
            weights = self._alpha * keep ** np.arange(x.size - 1, -1, -1)
            self._smoothed = keep**x.size * self._smoothed + float(weights @ x)
        self.frames_seen += n
        self._call_energy += float(energies.sum())
        self._call_frames += n

    @property
    def live_dbfs(self) -> float | None:
        """The smoothed level (about one second), or None before any noise frame."""
        if self.frames_seen == 0:
            return None
        return power_dbfs(self._smoothed)

    @property
    def call_dbfs(self) -> float | None:
        """The power mean over the whole call so far, or None."""
        if self._call_frames == 0:
            return None
        return power_dbfs(self._call_energy / self._call_frames)

    def start_call(self) -> None:
        self._call_energy = 0.0
        self._call_frames = 0


def power_dbfs(mean_square: float) -> float:
    """Mean-square energy to dBFS (10·log10), floored at digital silence."""
    if mean_square <= 0.0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 10.0 * math.log10(mean_square))
