"""Dead air: neither party speaking for ``silence_min_s``, once someone has spoken.

The silence is dated from the end of the last spurt (its last speech frame, not its
hangover) and confirmed as soon as it has lasted ``silence_min_s`` from there and no run of
speech frames is under way (one that starts a spurt dates it from its first frame, and a
silence confirmed during it would end shorter than its threshold), so the nudge
comes when the threshold is crossed, however late a spurt's end was known (a spurt cut back
to its last loud frame, see :meth:`dsp.activity.TalkSpurts.step`). It ends at the first frame
of the next spurt. A signalling tone on either line (a ringback, a customer keying digits,
:mod:`dsp.tones`) holds it off as speech does, without being speech: the call is not silent
while the phone rings or the customer types in their card number.
"""

from __future__ import annotations

from dsp import FRAME_S
from dsp.activity import TAIL_FRAMES, SpurtChange, TalkSpurts
from dsp.detectors import event
from dsp.events import Event, Kind, Phase
from dsp.party import frames
from dsp.settings import DetectorSettings


class DeadAir:
    """Stepped per frame with both parties' spurts while either is silent or dead air is on."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.active = False
        self.start = 0
        self.call_start = 0
        """Frame where the current call began: dead air never starts before it."""
        self.any_speech = False
        """Nothing is dead air before the first word of the call."""
        self.tone_end = 0
        """Just after the last frame with a signalling tone on either line (the pipeline
        sets it): the silence starts no sooner."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.threshold_s = s.silence_min_s
        self.min_frames = frames(s.silence_min_s)

    def start_call(self, frame: int) -> None:
        self.call_start = frame
        self.any_speech = False

    @property
    def pending(self) -> bool:
        """Whether dead air is on (else a frame in which someone talks needs no step)."""
        return self.active

    def earliest_begin(self, frame: int, a: TalkSpurts, c: TalkSpurts) -> int | None:
        """The smallest frame index at which a dead-air ``BEGIN`` can end (its ``end`` over the
        frame length) when frames from ``frame`` on are stepped (None while dead air is on:
        only its ``END`` can come). The silence
        starts no sooner than both spurts' ends as they stand, a running spurt's at its last
        speech frame or, should it be cut back (:meth:`dsp.activity.TalkSpurts.step`), just
        after its last loud frame's tail."""
        if self.active:
            return None
        start = max(self.call_start, _end_bound(a), _end_bound(c), self.tone_end)
        if not (self.any_speech or a.active or c.active):
            start = max(start, frame + 1)  # a first spurt, which ends at frame + 1 or later
        return max(frame + 1, start + self.min_frames)

    def step(self, i: int, a: TalkSpurts, c: TalkSpurts, a_change: SpurtChange,
             c_change: SpurtChange) -> Event | None:
        if not a.active and not c.active:
            if self.active:
                return None
            start = max(a.spurt_end, c.spurt_end, self.call_start, self.tone_end)
            if i + 1 - start < self.min_frames or a.run or c.run:
                # A run of speech frames under way may yet start a spurt, dated from its
                # first frame: confirmed then, the silence would end before its threshold.
                return None
            self.active = True
            self.start = start
            return event(Kind.SILENCE, Phase.BEGIN, None, start, i + 1,
                         threshold_s=self.threshold_s)
        if not self.active:
            return None
        self.active = False
        started = [p.spurt_start for p, ch in ((a, a_change), (c, c_change))
                   if ch is SpurtChange.START]
        end = max(self.start, min(started)) if started else i
        return event(Kind.SILENCE, Phase.END, None, self.start, end,
                     duration_s=(end - self.start) * FRAME_S, threshold_s=self.threshold_s)

    def close(self, frame: int) -> list[Event]:
        if not self.active:
            return []
        self.active = False
        return [event(Kind.SILENCE, Phase.END, None, self.start, frame,
                      duration_s=(frame - self.start) * FRAME_S, threshold_s=self.threshold_s)]


def _end_bound(sp: TalkSpurts) -> int:
    """The earliest ``spurt_end`` the party's spurts can leave from now on."""
    if not sp.active:
        return sp.spurt_end
    return min(sp.last_speech, sp.last_loud + TAIL_FRAMES) + 1
