"""Talk spurts: frame-level speech decisions turned into spurts with onset and hangover.

Configured in seconds, as pipecat's VAD parameters are: a spurt starts after ``start_frames``
consecutive speech frames (so a click or a cough does not start one) and ends after
``hangover_frames`` of non-speech (so the gaps between words do not end one). The spurt's
extent is recorded from its first to its last speech frame, without the hangover, so that
overlap measurements are not inflated by it.
"""

from __future__ import annotations

from enum import IntEnum

GAP_FILL_FRAMES = 10
"""Pauses shorter than 0.2 s (stop closures, breaths between words) do not end an activity
run, as in the accuracy definitions (DESIGN.md §4.4)."""


RUN_GAP_FRAMES = 15
"""A pause that starts a new activity run (who started later is the interrupter). Longer than
:data:`GAP_FILL_FRAMES` by the frames a pause's edges lose to the speech gate: a soft word
ending or onset under the gate makes a 0.15 s pause look like 0.25 s, and the interrupted
party would then seem to have started again after the interrupter."""


HOLD_GAP_FRAMES = 2
"""Inside a spurt, a run of speech after a gap longer than this (40 ms: a real pause, not a
frame the gate dropped) counts only once it reaches the resume level."""


LOUD_HOLD_FRAMES = 30
TAIL_FRAMES = 10
"""A spurt whose frames stay under the resume level for 0.6 s ends 0.2 s after its last
loud frame (see :meth:`TalkSpurts._cut`): a talker's phrase has a syllable near their level
more often than that, a background voice that follows without a pause does not."""


class SpurtChange(IntEnum):
    """What one step did to a party's spurt state. An IntEnum so ``+1``/``-1``/``0`` read as
    before; compare by identity (``ch is SpurtChange.START``)."""

    NONE = 0
    START = 1
    STOP = -1


class TalkSpurts:
    """On/off speech state of one party, stepped once per frame."""

    __slots__ = (
        "active",
        "active_frames",
        "call_active_frames",
        "call_start",
        "fresh",
        "hangover_frames",
        "held",
        "last_heard",
        "last_loud",
        "last_speech",
        "run",
        "run_resumes",
        "run_start",
        "run_strong",
        "spurt_end",
        "spurt_start",
        "start_frames",
        "voice_start",
        "voiced",
        "was_cut",
    )

    def __init__(self, start_frames: int, hangover_frames: int) -> None:
        self.start_frames = max(1, start_frames)
        self.hangover_frames = max(1, hangover_frames)
        self.active = False
        self.active_frames = 0
        """The spurts' own frames so far: their speech frames with the pauses shorter than
        :data:`GAP_FILL_FRAMES` between them filled (a spurt's hangover and a run that never
        became a spurt do not count). The reported speech time counts more than this, as
        the accuracy definitions do: see :mod:`dsp.speech_time`."""
        self.call_start = 0
        self.call_active_frames = 0
        """:attr:`active_frames` from frame :attr:`call_start` on (set by :meth:`start_call`):
        frames credited late (a spurt's onset run, a run that resumed it) are counted in the
        call they were spoken in."""
        self.run = 0
        """Consecutive speech frames up to now."""
        self.run_strong = False
        """Whether the current run of speech frames has reached the strong level."""
        self.run_resumes = False
        """Whether the current run has reached the level that carries a spurt on."""
        self.held = False
        """The current run, inside a spurt and after a pause, has not reached the strong
        level yet, so it does not extend the spurt."""
        self.spurt_start = -1
        """Frame index of the current (or last) spurt's first speech frame."""
        self.last_speech = -(10**9)
        """Frame index of the most recent speech frame."""
        self.last_loud = -(10**9)
        """Frame index of the spurt's most recent frame at the resume level."""
        self.last_heard = -(10**9)
        """Frame index of the most recent speech frame, whether or not a spurt took it (a
        cut spurt's frames after its tail and a held run's frames are heard too)."""
        self.fresh = True
        """The current run of speech frames came after more than :data:`RUN_GAP_FRAMES`
        without any: it begins a new activity run."""
        self.run_start = -(10**9)
        """First frame of the current stretch of speech whose gaps are all shorter than
        :data:`RUN_GAP_FRAMES`: where the party's current activity run began, in the sense
        of the accuracy definitions (who started talking later is the interrupter). Every
        speech frame heard keeps it going, also those a spurt does not take (a held run, what
        follows a cut): an interrupted party who goes on more softly under the interrupter
        is still the one who started first."""
        self.voice_start = -(10**9)
        """First frame of the current activity run's first run of speech that reaches the
        resume level (its first frame until one does): where the party's own voice began.
        Who interrupted is judged on it. On a mic in babble or typing, the room's speech
        frames under the party's level can run on into their reply with gaps shorter than
        :data:`RUN_GAP_FRAMES`; dated from them, the reply would look older than the
        customer's speech it cut into, and the customer would be blamed."""
        self.voiced = False
        """The current activity run has reached the resume level."""
        self.spurt_end = -(10**9)
        """Frame index just after the last speech frame of the last finished spurt."""
        self.was_cut = False
        """The last spurt ended by :meth:`_cut` (another voice took over), not a pause."""

    def step(self, i: int, speech: bool, strong: bool = True,
             resume: bool | None = None) -> SpurtChange:
        """Advance to frame ``i``. Returns START when a spurt starts, STOP when one ends, else NONE.

        ``strong`` marks a speech frame loud enough to *start* a spurt (well above the
        background): a voice close to the mic always has such syllable peaks, while babble
        and other background talk, whose frames the VAD also flags, rarely do. ``resume``
        (default: ``strong``) marks one loud enough to carry on a spurt after a pause.
        """
        if speech:
            self.run += 1
            if self.run == 1:
                self.fresh = i - self.last_heard > RUN_GAP_FRAMES
                if self.fresh:
                    self.run_start = self.voice_start = i
                    self.voiced = False
            if not self.voiced and (strong if resume is None else resume):
                self.voice_start = i - self.run + 1
                self.voiced = True
            self.last_heard = i
            if strong:
                self.run_strong = True
            if self.active:
                loud = strong if resume is None else resume
                if loud:
                    self.run_resumes = True
                return self._continue(i, loud)
            self.last_speech = i
            if self.run >= self.start_frames and self.run_strong:
                self.active = True
                self.spurt_start = i - self.run + 1
                self.last_loud = i
                self._credit(i, self.run)
                return SpurtChange.START
            return SpurtChange.NONE
        self.run = 0
        self.run_strong = False
        self.run_resumes = False
        self.held = False
        if self.active and i - self.last_speech >= self.hangover_frames:
            self.active = False
            self.spurt_end = self.last_speech + 1
            self.was_cut = False
            return SpurtChange.STOP
        return SpurtChange.NONE

    def start_call(self, frame: int) -> None:
        self.call_start = frame
        self.call_active_frames = 0

    def _credit(self, last: int, n: int) -> None:
        """Count frames ``last - n + 1 .. last`` as activity."""
        self.active_frames += n
        self.call_active_frames += max(0, min(n, last - self.call_start + 1))

    def _continue(self, i: int, loud: bool) -> SpurtChange:
        """A speech frame inside a spurt. A run that follows a pause must reach the strong
        level before it counts: other voices in the room (office babble, a colleague) come
        in runs that never do, and would otherwise hold the spurt, and dead air, for as
        long as they talk."""
        first = i - self.run + 1
        if self.run == 1:
            self.held = i - self.last_speech > HOLD_GAP_FRAMES
        if self.held:
            if not self.run_resumes:
                if i - self.last_speech >= self.hangover_frames:
                    # The spurt ended at its last counted frame; this run may start the
                    # next one on its own merits.
                    self.active = self.held = False
                    self.spurt_end = self.last_speech + 1
                    self.was_cut = False
                    return SpurtChange.STOP
                return SpurtChange.NONE
            self.held = False
            since = first - self.last_speech
            self._credit(i, self.run + (since - 1 if since <= GAP_FILL_FRAMES else 0))
            self.last_speech = self.last_loud = i
            return SpurtChange.NONE
        since = i - self.last_speech
        self._credit(i, since if since <= GAP_FILL_FRAMES else 1)
        self.last_speech = i
        if loud:
            self.last_loud = i
        elif i - self.last_loud > LOUD_HOLD_FRAMES:
            return self._cut()
        return SpurtChange.NONE

    def _cut(self) -> SpurtChange:
        """End the spurt :data:`TAIL_FRAMES` after its last loud frame: what followed, for
        :data:`LOUD_HOLD_FRAMES` without one, was another voice taking over as the party
        stopped (no pause between them for the hold above to see). Its frames are taken back
        out of the activity count, and it must start a spurt of its own."""
        keep = self.last_loud + TAIL_FRAMES
        if self.last_speech > keep:
            n = self.last_speech - keep
            self.active_frames -= n
            self.call_active_frames -= max(0, min(n, self.last_speech - self.call_start + 1))
            self.last_speech = keep
        self.active = self.held = False
        self.spurt_end = self.last_speech + 1
        self.was_cut = True
        self.run = 0
        self.run_strong = self.run_resumes = False
        return SpurtChange.STOP
