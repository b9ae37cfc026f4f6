"""Background-noise measurement for one party.

Two views of the noise, for two jobs:

* :class:`MinimumFloor` follows the *quietest* frames (minimum statistics over a sliding
  window of two to three seconds). Speech must stand out of it to count as speech, which keeps
  steady noise (hum, fans, rain) from being taken for a voice.
* :class:`BackgroundLevel` is the level the party's audio sits at when nobody in the room is
  talking to the mic: a low percentile of recent frames. It is what the noise alert (judged
  while the party is silent, as headset vendors measure room noise), the SNR and the report
  use; fluctuating noise such as babble or typing raises it even though its minimum stays low.
"""

from __future__ import annotations

import math

import numpy as np

from dsp.levels import power_dbfs

UPPER_PERCENTILE = 80.0


class MinimumFloor:
    """Sliding-window minimum of frame levels (dBFS) over the current and the last
    ``history`` segments, computed for a run of frames at once."""

    def __init__(self, history: int = 2) -> None:
        self._history: list[float] = []
        self._keep = history
        self._cur = math.inf
        self._past = math.inf
        """The floor over the finished segments of the window (+inf before the first ends)."""

    def floors(self, levels_dbfs: np.ndarray) -> np.ndarray:
        """The floor at each of these frames (all inside the current segment)."""
        run = np.minimum.accumulate(levels_dbfs)
        low = min(self._cur, self._past)
        self._cur = min(self._cur, float(run[-1]))
        np.minimum(run, low, out=run)
        return run

    @property
    def floor_dbfs(self) -> float:
        """The floor over the current window (+inf before any frame)."""
        return min(self._cur, *self._history) if self._history else self._cur

    @property
    def settled_dbfs(self) -> float:
        """The floor over the window's finished segments (+inf before the first ends): unlike
        :attr:`floor_dbfs`, the same at any frame of a segment however the input is chunked."""
        return self._past

    def end_segment(self) -> None:
        self._history.append(self._cur)
        if len(self._history) > self._keep:
            del self._history[0]
        self._past = min(self._history, default=math.inf)
        self._cur = math.inf


class BackgroundLevel:
    """A party's background level: a low percentile of its recent frame levels, speech or not.

    Judged by percentile rather than as a mean over "non-speech" frames because it must not
    depend on the speech decision: webrtcvad flags babble as speech in nearly every frame, so a
    mean over non-speech frames never sees babble, the gate never rises, and the babble is
    taken for the agent's voice for as long as it lasts. A low percentile of all frames sits
    in the pauses of speech (every talker pauses between words) and on the body of any noise.
    """

    def __init__(self, window_frames: int = 200, percentile: float = 30.0) -> None:
        self._hist = np.zeros(window_frames)
        self._count = 0
        self._percentile = percentile
        self.live_dbfs: float | None = None
        """The current estimate, refreshed once per segment; None before the first."""
        self.upper_dbfs: float | None = None
        """The :data:`UPPER_PERCENTILE` of the same frames: how high the background reaches."""
        self._call_power = 0.0
        self._call_segments = 0

    def add_segment(self, levels_dbfs: np.ndarray) -> None:
        """Fold one segment's frame levels in."""
        hist = self._hist
        size = hist.size
        n = min(levels_dbfs.size, size)
        # The ring takes the newest n levels from its write position on, wrapping once: two
        # slice copies, not an index array and a scatter.
        new = levels_dbfs[levels_dbfs.size - n :]
        pos = self._count % size
        first = min(n, size - pos)
        hist[pos : pos + first] = new[:first]
        hist[: n - first] = new[first:]
        self._count += n
        filled = self._hist[: min(self._count, size)]
        k = int(self._percentile / 100.0 * (filled.size - 1))
        u = int(UPPER_PERCENTILE / 100.0 * (filled.size - 1))
        part = np.partition(filled, (k, u))
        self.live_dbfs = float(part[k])
        self.upper_dbfs = float(part[u])

    @property
    def frames(self) -> int:
        """Frames folded in so far."""
        return self._count

    def add_quiet(self, mean_square: float) -> None:
        """Count a segment in which the party was mostly silent toward the call's noise floor:
        the mean energy of its silent frames (what the room sounds like between words)."""
        self._call_power += mean_square
        self._call_segments += 1

    def seed(self, levels_dbfs: np.ndarray) -> None:
        """A first estimate from frames about to be processed, so that the very first second
        of a stream is gated like the rest (the frames are folded in properly later)."""
        k = int(self._percentile / 100.0 * (levels_dbfs.size - 1))
        self.live_dbfs = float(np.partition(levels_dbfs, k)[k])

    @property
    def call_dbfs(self) -> float | None:
        """Power mean over the call's mostly-silent segments, or None."""
        if self._call_segments == 0:
            return None
        return power_dbfs(self._call_power / self._call_segments)

    def start_call(self) -> None:
        self._call_power = 0.0
        self._call_segments = 0
