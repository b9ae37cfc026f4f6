"""Speech time of one party, counted as the accuracy definitions count it (DESIGN.md §4.4).

The definitions count every frame within 30 dB of the party's level, with pauses under 0.2 s
filled. Counting only the frames of the talk spurts misses a fifth of a clear talker's speech:
the speech gate, built to keep background voices from starting a spurt, leaves out breathy
onsets, trailing syllables and unvoiced sounds that stand plainly out of the room. Here a frame
counts when it stands out of the background (``audible``: the party's speech gate, or within
30 dB of its level and a few dB above the background) *and* lies near a spurt: inside it, or
within :data:`EDGE_FRAMES` before its first or after its last speech frame. A spurt cut because
another voice took over keeps no frames after its cut. Counted frames closer than
:data:`GAP_FILL_FRAMES` are joined, as the definitions join them.

Decisions wait :data:`DELAY_FRAMES`, until every spurt that could claim a frame has started
(its onset run is confirmed late) or been cut, so the count is final when made: it only grows,
and it is the same however the audio is chunked. :meth:`flush` settles the rest at the end.
"""

from __future__ import annotations

import numpy as np

from dsp.activity import GAP_FILL_FRAMES, LOUD_HOLD_FRAMES, SpurtChange, TalkSpurts

EDGE_FRAMES = 15
"""A spurt's soft start and end: 0.3 s before its first and after its last speech frame."""

DELAY_FRAMES = 64
"""How long a frame's decision waits: longer than a spurt's onset run is confirmed late, and
than a weak tail is taken back (:data:`dsp.activity.LOUD_HOLD_FRAMES`)."""

assert DELAY_FRAMES > LOUD_HOLD_FRAMES + EDGE_FRAMES

Change = tuple[int, SpurtChange, int, int, bool]
"""A spurt change as the frame loop saw it: (frame, change, spurt_start, spurt_end, was_cut)."""


def change(frame: int, kind: SpurtChange, spurts: TalkSpurts) -> Change:
    """What :meth:`SpeechTime.block` needs of a spurt change, taken as it happens."""
    return frame, kind, spurts.spurt_start, spurts.spurt_end, spurts.was_cut


class SpeechTime:
    """Frames of speech of one party, [this call, lifetime]; stepped once per block."""

    __slots__ = ("_audible", "_base", "_call_start", "_last", "_near", "_tail", "frames")

    def __init__(self) -> None:
        self._base = 0
        """Frame index of the first undecided frame (the buffers' index 0)."""
        self._audible = np.zeros(0, dtype=bool)
        self._near = np.zeros(0, dtype=bool)
        self._tail = -1
        """End (exclusive) of the soft end still to mark, after a spurt that stopped."""
        self._last = -(10**9)
        """The last counted frame."""
        self._call_start = 0
        self.frames = [0, 0]
        """Counted frames, [this call, lifetime]."""

    def start_call(self, frame: int) -> None:
        self._call_start = frame
        self.frames[0] = 0

    def block(self, i0: int, audible: np.ndarray, active: np.ndarray,
              changes: list[Change]) -> None:
        """Frames ``i0 ..`` with their audible decisions, whether a spurt was active in
        each (``TalkSpurts.active`` after the frame's step), and the spurt changes of the
        block in order (:func:`change`)."""
        n = len(audible)
        self._audible = np.concatenate((self._audible, audible))
        near = active.copy()
        if self._tail > i0:
            near[: self._tail - i0] |= audible[: self._tail - i0]  # the open soft end
        self._near = np.concatenate((self._near, near))
        for frame, kind, start, end, was_cut in changes:
            if kind is SpurtChange.START:
                # its soft start and its onset run (confirmed only now)
                self._mark(start - EDGE_FRAMES, frame + 1)
                self._tail = -1
            else:
                # Nothing after the spurt's last speech frame is its own: the hangover,
                # or (cut) another voice, unless it is the soft end of a paused spurt.
                self._unmark(end, frame + 1)
                if not was_cut:
                    self._tail = end + EDGE_FRAMES
                    self._mark(end, self._tail, audible_only=True)
        if self._tail >= 0 and self._tail <= i0 + n:
            self._tail = -1
        self._decide(i0 + n - DELAY_FRAMES)

    def flush(self, end: int) -> None:
        """Decide every frame before ``end`` (end of input)."""
        self._decide(end)

    def so_far(self, span: int) -> int:
        """Frames counted so far, [0] this call or [1] lifetime; this call's count includes
        the undecided frames as they stand (a call's summary cannot wait for them), the
        lifetime count does not (it feeds a counter, which must never go down)."""
        if span:
            return self.frames[1]
        pending = int(np.count_nonzero(self._audible & self._near))
        return self.frames[0] + pending

    def _mark(self, lo: int, hi: int, audible_only: bool = False) -> None:
        a, b = max(lo - self._base, 0), min(hi - self._base, len(self._near))
        if a < b:
            if audible_only:
                self._near[a:b] |= self._audible[a:b]
            else:
                self._near[a:b] = True

    def _unmark(self, lo: int, hi: int) -> None:
        a, b = max(lo - self._base, 0), min(hi - self._base, len(self._near))
        if a < b:
            self._near[a:b] = False

    def _decide(self, upto: int) -> None:
        k = upto - self._base
        if k <= 0:
            return
        counted = np.flatnonzero(self._audible[:k] & self._near[:k]) + self._base
        if counted.size:
            gap = np.diff(counted, prepend=self._last) - 1
            add = 1 + np.where((gap > 0) & (gap < GAP_FILL_FRAMES), gap, 0)
            self.frames[1] += int(add.sum())
            own = np.minimum(add, counted - self._call_start + 1)
            self.frames[0] += int(own[own > 0].sum())
            self._last = int(counted[-1])
        self._audible = self._audible[k:]
        self._near = self._near[k:]
        self._base = upto
