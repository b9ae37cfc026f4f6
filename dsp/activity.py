"""Talk spurts: frame-level speech decisions turned into spurts with onset and hangover.

Configured in seconds, as pipecat's VAD parameters are: a spurt starts after ``start_frames``
consecutive speech frames (so a click or a cough does not start one) and ends after
``hangover_frames`` of non-speech (so the gaps between words do not end one). The spurt's
extent is recorded from its first to its last speech frame, without the hangover, so that
overlap measurements are not inflated by it.
"""

from __future__ import annotations


class TalkSpurts:
    """On/off speech state of one party, stepped once per frame."""

    __slots__ = (
        "active",
        "hangover_frames",
        "last_speech",
        "run",
        "run_strong",
        "spurt_end",
        "spurt_start",
        "start_frames",
    )

    def __init__(self, start_frames: int, hangover_frames: int) -> None:
        self.start_frames = max(1, start_frames)
        self.hangover_frames = max(1, hangover_frames)
        self.active = False
        self.run = 0
        """Consecutive speech frames up to now."""
        self.run_strong = False
        """Whether the current run of speech frames has reached the strong level."""
        self.spurt_start = -1
        """Frame index of the current (or last) spurt's first speech frame."""
        self.last_speech = -(10**9)
        """Frame index of the most recent speech frame."""
        self.spurt_end = -(10**9)
        """Frame index just after the last speech frame of the last finished spurt."""

    def step(self, i: int, speech: bool, strong: bool = True) -> int:
        """Advance to frame ``i``. Returns +1 when a spurt starts, -1 when one ends, else 0.

        ``strong`` marks a speech frame loud enough to *start* a spurt (well above the
        background): a voice close to the mic always has such syllable peaks, while babble
        and other background talk, whose frames the VAD also flags, rarely do.
        """
        if speech:
            self.run += 1
            self.last_speech = i
            if strong:
                self.run_strong = True
            if not self.active and self.run >= self.start_frames and self.run_strong:
                self.active = True
                self.spurt_start = i - self.run + 1
                return 1
            return 0
        self.run = 0
        self.run_strong = False
        if self.active and i - self.last_speech >= self.hangover_frames:
            self.active = False
            self.spurt_end = self.last_speech + 1
            return -1
        return 0
