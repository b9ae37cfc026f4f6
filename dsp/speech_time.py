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
A caller can hold decisions longer (:meth:`hold`, :meth:`release`) while what some frames are
is not known yet: the agent's, before the echo estimator can tell leak (:mod:`dsp.early_leak`).
"""

from __future__ import annotations

import operator
from itertools import compress

import numpy as np

from dsp.activity import GAP_FILL_FRAMES, LOUD_HOLD_FRAMES, SpurtChange, TalkSpurts
from dsp.heard_speech import LOOKAHEAD_FRAMES, LOOKBACK_FRAMES, UNCHECKED, BackgroundTally, refine

EDGE_FRAMES = 15
"""A spurt's soft start and end: 0.3 s before its first and after its last speech frame."""

DELAY_FRAMES = 64
"""How long a frame's decision waits: longer than a spurt's onset run is confirmed late, and
than a weak tail is taken back (:data:`dsp.activity.LOUD_HOLD_FRAMES`)."""

assert DELAY_FRAMES > LOUD_HOLD_FRAMES + EDGE_FRAMES + LOOKAHEAD_FRAMES

NOT_HELD = 2**62
"""No frame is held (:meth:`SpeechTime.hold`)."""

Change = tuple[int, SpurtChange, int, int, bool]
"""A spurt change as the frame loop saw it: (frame, change, spurt_start, spurt_end, was_cut)."""


def change(frame: int, kind: SpurtChange, spurts: TalkSpurts) -> Change:
    """What :meth:`SpeechTime.block` needs of a spurt change, taken as it happens."""
    return frame, kind, spurts.spurt_start, spurts.spurt_end, spurts.was_cut


class SpeechTime:
    """Frames of speech of one party, [this call, lifetime]; stepped once per block.

    The undecided frames (about :data:`DELAY_FRAMES`) are kept as Python lists of bools:
    live blocks are two frames, and a handful of list operations per block costs a fraction
    of the numpy calls (each a few microseconds whatever its size) the same work took."""

    __slots__ = ("_audible", "_base", "_call_start", "_heard", "_held", "_last", "_near",
                 "_past", "_tail", "_tally", "_tally_call", "frames")

    def __init__(self) -> None:
        self._base = 0
        """Frame index of the first undecided frame (the buffers' index 0)."""
        self._audible: list[bool] = []
        self._near: list[bool] = []
        self._tail = -1
        """End (exclusive) of the soft end still to mark, after a spurt that stopped."""
        self._last = -(10**9)
        """The last counted frame."""
        self._call_start = 0
        self._held = NOT_HELD
        """Frames from this index on stay undecided (:meth:`hold`)."""
        self.frames = [0, 0]
        """Counted frames, [this call, lifetime]."""
        self._heard: list[int] = []
        """silero's verdicts on the undecided frames (:mod:`dsp.heard_speech`), as far as
        they came (:meth:`heard`); missing ones are unchecked."""
        self._past: tuple[list[bool], list[int]] = ([], [])
        """The gates' verdicts and silero's on the last decided frames, which the next
        decisions read (:data:`dsp.heard_speech.LOOKBACK_FRAMES`)."""
        self._tally = BackgroundTally()
        self._tally_call = 0
        """The call whose background :attr:`_tally` measures, by its first frame."""

    @property
    def undecided_from(self) -> int:
        """The first frame not decided yet: frames before it are counted or not for good."""
        return self._base

    def hold(self, frame: int) -> None:
        """Decide nothing from ``frame`` (not yet decided) on until :meth:`release`: what
        those frames are may still change (:mod:`dsp.early_leak`)."""
        if frame < self._base:
            raise ValueError(f"frame {frame} is decided already (from {self._base} on is not)")
        self._held = min(self._held, frame)

    def release(self, start: int, drop: np.ndarray | None = None) -> None:
        """End a :meth:`hold`. Frames ``start ..`` where ``drop`` is True do not count after
        all (they were not the party's voice); decisions then catch up."""
        if drop is not None:
            if start < self._base:
                raise ValueError(f"frame {start} is decided already (from {self._base} on "
                                 "is not)")
            aud, a = self._audible, start - self._base
            for j in np.flatnonzero(drop[: len(aud) - a]).tolist():
                aud[a + j] = False
        self._held = NOT_HELD
        self._decide(self._base + len(self._audible) - DELAY_FRAMES)

    def heard(self, i0: int, verdicts: list[int]) -> None:
        """silero's verdicts on frames ``i0 ..`` (:meth:`dsp.heard_speech.HeardFrames.hear`);
        they come before :meth:`block` gives those frames."""
        at = i0 - self._base
        if at < 0:
            verdicts, at = verdicts[-at:], 0
        have = len(self._heard)
        if at > have:
            self._heard += [UNCHECKED] * (at - have)
        self._heard[at:] = verdicts

    def start_call(self, frame: int) -> None:
        self._call_start = frame
        self.frames[0] = 0

    def block(self, i0: int, audible: np.ndarray, active: np.ndarray,
              changes: list[Change]) -> None:
        """Frames ``i0 ..`` with their audible decisions, whether a spurt was active in
        each (``TalkSpurts.active`` after the frame's step), and the spurt changes of the
        block in order (:func:`change`)."""
        n = len(audible)
        aud = audible.tolist()
        near = active.tolist()
        if self._tail > i0:
            for j in range(min(self._tail - i0, n)):  # the open soft end
                if aud[j]:
                    near[j] = True
        self._audible += aud
        self._near += near
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
        """Decide every frame before ``end`` (end of input), held ones too."""
        self._held = NOT_HELD
        self._decide(end)

    def so_far(self, span: int) -> int:
        """Frames counted so far, [0] this call or [1] lifetime; this call's count includes
        the undecided frames as they stand (a call's summary cannot wait for them), the
        lifetime count does not (it feeds a counter, which must never go down)."""
        if span:
            return self.frames[1]
        pending = sum(map(operator.and_, self._audible, self._near))
        return self.frames[0] + pending

    def _mark(self, lo: int, hi: int, audible_only: bool = False) -> None:
        near = self._near
        a, b = max(lo - self._base, 0), min(hi - self._base, len(near))
        if a < b:
            if audible_only:
                aud = self._audible
                for j in range(a, b):
                    if aud[j]:
                        near[j] = True
            else:
                near[a:b] = [True] * (b - a)

    def _unmark(self, lo: int, hi: int) -> None:
        near = self._near
        a, b = max(lo - self._base, 0), min(hi - self._base, len(near))
        if a < b:
            near[a:b] = [False] * (b - a)

    def _decide(self, upto: int) -> None:
        k = min(upto, self._held) - self._base
        heard = self._heard
        checked = any(h != UNCHECKED for h in heard[:k])
        if checked and self._held != NOT_HELD:
            # silero's verdicts read LOOKAHEAD_FRAMES past a frame; held ones may change.
            k = min(k, self._held - LOOKAHEAD_FRAMES - self._base)
        if k <= 0:
            return
        counted = (self._refined(k) if checked else
                   list(map(operator.and_, self._audible[:k], self._near[:k])))
        base, last, call_start = self._base, self._last, self._call_start
        lifetime = this_call = 0
        for j in compress(range(k), counted):
            i = base + j
            gap = i - last - 1
            add = 1 + gap if 0 < gap < GAP_FILL_FRAMES else 1  # short pauses are filled
            lifetime += add
            own = min(add, i - call_start + 1)  # this call's part of it
            if own > 0:
                this_call += own
            last = i
        self.frames[1] += lifetime
        self.frames[0] += this_call
        self._last = last
        past_c, past_h = self._past
        past_c += map(operator.and_, self._audible[:k], self._near[:k])
        past_h += heard[:k]
        past_h += [UNCHECKED] * (len(past_c) - len(past_h))
        del past_c[:-LOOKBACK_FRAMES], past_h[:-LOOKBACK_FRAMES]
        del self._audible[:k]
        del self._near[:k]
        del heard[:k]
        self._base = base + k

    def _refined(self, k: int) -> list[bool]:
        """Which of the next ``k`` frames count with silero's verdicts (see
        :func:`dsp.heard_speech.refine`); its background tally starts again at each call."""
        past_c, past_h = self._past
        end = k + LOOKAHEAD_FRAMES
        counted = past_c + list(map(operator.and_, self._audible[:end], self._near[:end]))
        heard = past_h + self._heard[:end]
        heard += [UNCHECKED] * (len(counted) - len(heard))
        lo, out = len(past_c), []
        for start, stop in self._call_split(k):
            if start == self._call_start - self._base and self._tally_call != self._call_start:
                self._tally, self._tally_call = BackgroundTally(), self._call_start
            out += refine(counted, heard, lo + start, lo + stop, self._tally)
        return out

    def _call_split(self, k: int) -> list[tuple[int, int]]:
        """The next ``k`` frames as ranges, split where this call starts."""
        at = self._call_start - self._base
        return [(0, at), (at, k)] if 0 < at < k else [(0, k)]
