"""Background-noise measurement for one party.

Two views of the noise, for two jobs:

* :class:`MinimumFloor` follows the *quietest* frames (minimum statistics over a sliding
  window of about two seconds). Speech must stand out of it to count as speech, which keeps
  steady noise (hum, fans, rain) from being taken for a voice.
* :class:`NoiseLevel` is the *power mean* of the frames in which the party is silent, the way
  headset vendors measure room noise ("noise while the agent is not talking"). It is what the
  noise alert, the SNR and the report use; fluctuating noise such as babble or typing raises it
  even though its minimum stays low.
"""

from __future__ import annotations

import math

from dsp.levels import DBFS_FLOOR


class MinimumFloor:
    """Sliding-window minimum of frame levels (dBFS), in sub-windows so each step is O(1)."""

    __slots__ = ("_count", "_cur", "_history", "_sub_frames", "_subs", "floor_dbfs")

    def __init__(self, sub_frames: int = 25, subs: int = 4) -> None:
        self._sub_frames = sub_frames
        self._subs = subs
        self._history: list[float] = []
        self._cur = math.inf
        self._count = 0
        self.floor_dbfs = DBFS_FLOOR
        """Current floor estimate; starts at the digital-silence floor until data arrives."""

    def step(self, level_dbfs: float) -> float:
        if level_dbfs < self._cur:
            self._cur = level_dbfs
        self._count += 1
        if self._count >= self._sub_frames:
            self._history.append(self._cur)
            if len(self._history) > self._subs:
                del self._history[0]
            self._cur = math.inf
            self._count = 0
        floor = min(self._history) if self._history else self._cur
        if self._cur < floor:
            floor = self._cur
        self.floor_dbfs = floor
        return floor


class NoiseLevel:
    """Power mean of a party's non-speech frames: a smoothed live value and a call total."""

    __slots__ = ("_alpha", "_call_energy", "_call_frames", "_smoothed", "frames_seen")

    def __init__(self, time_constant_frames: int = 50) -> None:
        self._alpha = 1.0 / max(1, time_constant_frames)
        self._smoothed = 0.0
        self.frames_seen = 0
        self._call_energy = 0.0
        self._call_frames = 0

    def step(self, energy: float) -> None:
        """Add one non-speech frame's mean-square energy."""
        if self.frames_seen == 0:
            self._smoothed = energy
        else:
            self._smoothed += self._alpha * (energy - self._smoothed)
        self.frames_seen += 1
        self._call_energy += energy
        self._call_frames += 1

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
