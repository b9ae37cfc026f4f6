"""A debounced condition (noise, dead air, clipping, ...): the one state machine that turns
per-frame "bad"/"good" verdicts into BEGIN and END, so every detector shares the same
minimum-duration and resolve semantics.

A frame can be neither bad nor good (for example, noise cannot be judged while the agent is
speaking): such a frame holds the state and does not count toward either duration.
"""

from __future__ import annotations

from enum import Enum


class Change(Enum):
    """What one update did to a condition; compare by identity (``r is BEGIN``)."""

    NOTHING = "nothing"
    BEGIN = "begin"
    END = "end"

    def __bool__(self) -> bool:
        """Only a change is true, so ``[r for r in results if r]`` keeps BEGIN and END."""
        return self is not Change.NOTHING


NOTHING, BEGIN, END = Change.NOTHING, Change.BEGIN, Change.END


class Condition:
    """Counts bad frames to confirm, good frames to resolve."""

    __slots__ = ("active", "bad_run", "end", "good_run", "off_frames", "on_frames", "start")

    def __init__(self, on_frames: int, off_frames: int) -> None:
        self.on_frames = max(1, on_frames)
        self.off_frames = max(1, off_frames)
        self.active = False
        self.bad_run = 0
        self.good_run = 0
        self.start = 0
        """Frame index where the bad run (and so the condition) began."""
        self.end = 0
        """Frame index where the condition ended (first good frame of the resolving run)."""

    def update(self, i: int, bad: bool, good: bool) -> Change:
        """Advance to frame ``i``; returns NOTHING, BEGIN or END."""
        return self.update_many(i, 1, bad, good)

    def update_many(self, i: int, n: int, bad: bool, good: bool) -> Change:
        """Advance by ``n`` frames that share one verdict, the first of them being ``i``.

        Used by detectors judged once per segment (noise, levels): same semantics as ``n``
        calls of :meth:`update`, with BEGIN's start and END's end at the first such frame.
        """
        if n <= 0:
            return NOTHING
        if bad:
            self.good_run = 0
            if self.bad_run == 0 and not self.active:
                self.start = i
            self.bad_run += n
            if not self.active and self.bad_run >= self.on_frames:
                self.active = True
                return BEGIN
        elif good:
            self.bad_run = 0
            if self.active:
                if self.good_run == 0:
                    self.end = i
                self.good_run += n
                if self.good_run >= self.off_frames:
                    self.active = False
                    self.good_run = 0
                    return END
        return NOTHING

    def close(self, i: int) -> bool:
        """End an active condition at frame ``i`` (end of input). True if it was active."""
        if not self.active:
            return False
        if self.good_run == 0:
            self.end = i
        self.active = False
        self.bad_run = self.good_run = 0
        return True
