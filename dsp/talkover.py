"""Talk-over: both parties speaking at once for at least ``min_overlap_s``, and who started it.

The initiator is the party whose talk spurt began second, i.e. who started speaking while the
other was already talking. The overlap is measured between the parties' last *speech* frames
(not their hangovers), so a quick turn change never looks like an interruption, and both
parties must actually be speaking through most of it (``min_density``), so a few keystrokes or
a cough under the other's speech do not count. Backchannels ("mm-hmm", "yeah") are shorter than
the minimum overlap and so are not interruptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsp.activity import TalkSpurts
from dsp.events import Stream


@dataclass(frozen=True, slots=True)
class OverlapChange:
    """A talk-over confirmed (``begin``) or over (``begin`` False), in frame indices."""

    begin: bool
    start: int
    end: int
    initiator: Stream


class TalkOverDetector:
    """Stepped once per frame with both parties' spurt states."""

    def __init__(self, min_frames: int, min_density: float = 0.4) -> None:
        self.min_frames = max(1, min_frames)
        self.min_density = min_density
        self.in_overlap = False
        self.confirmed = False
        self.vetoed = False
        """The current overlap was judged not to be a talk-over (see :meth:`veto`)."""
        self.start = 0
        self.initiator = Stream.CUSTOMER
        self._frames = 0
        self._agent_speech = 0
        self._customer_speech = 0

    def step(
        self,
        i: int,
        agent: TalkSpurts,
        customer: TalkSpurts,
        agent_speech: bool,
        customer_speech: bool,
    ) -> OverlapChange | None:
        if agent.active and customer.active:
            if not self.in_overlap:
                self.in_overlap = True
                self.confirmed = False
                self.vetoed = False
                a0, c0 = agent.spurt_start, customer.spurt_start
                self.start = max(a0, c0)
                self.initiator = Stream.AGENT if a0 > c0 else Stream.CUSTOMER
                # Frames between the overlap's start and now were speech for the later starter
                # (its onset run) and, by the spurt's definition, mostly for the earlier one.
                back = i - self.start
                self._frames = back
                self._agent_speech = back
                self._customer_speech = back
            self._frames += 1
            self._agent_speech += agent_speech
            self._customer_speech += customer_speech
            if not self.confirmed:
                end = min(agent.last_speech, customer.last_speech) + 1
                if end - self.start >= self.min_frames and self._dense():
                    self.confirmed = True
                    return OverlapChange(True, self.start, i + 1, self.initiator)
            return None
        if self.in_overlap:
            self.in_overlap = False
            if self.confirmed and not self.vetoed:
                self.confirmed = False
                end = min(agent.last_speech, customer.last_speech) + 1
                return OverlapChange(False, self.start, max(end, self.start + 1), self.initiator)
        return None

    def close(self, agent: TalkSpurts, customer: TalkSpurts) -> OverlapChange | None:
        """End a confirmed overlap at the end of input."""
        if self.in_overlap and self.confirmed and not self.vetoed:
            self.in_overlap = self.confirmed = False
            end = min(agent.last_speech, customer.last_speech) + 1
            return OverlapChange(False, self.start, max(end, self.start + 1), self.initiator)
        self.in_overlap = self.confirmed = False
        return None

    def veto(self) -> None:
        """Drop the overlap just confirmed: the caller found it is not two people talking
        (the agent's side is the far end leaking back, or keystrokes). No END will follow."""
        self.vetoed = True

    def _dense(self) -> bool:
        need = self.min_density * self._frames
        return self._agent_speech >= need and self._customer_speech >= need
