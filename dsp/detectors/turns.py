"""Turns: who holds the floor, each party's longest turn, and the agent's monologue.

A party's turn starts with a talk spurt when they do not hold the floor, and lasts through
their own pauses shorter than :data:`TURN_PAUSE_S` and through the other party's
backchannels ("mm-hmm", "right": spurts shorter than :data:`FLOOR_TAKE_S`). It ends at the
party's last speech before the other party has talked for :data:`FLOOR_TAKE_S`, or before a
pause of :data:`TURN_PAUSE_S`. An agent turn longer than ``monologue_max_s`` is a monologue
(DESIGN.md §5: product explanations stay under two minutes); customer monologues are good
and are only measured.

Driven by the parties' spurt changes (a few per second at most) and checked once per segment,
so it costs nothing per frame.
"""

from __future__ import annotations

from dsp import FRAME_S
from dsp.activity import SpurtChange, TalkSpurts
from dsp.detectors import event
from dsp.events import Event, Kind, Phase, Stream
from dsp.party import frames
from dsp.settings import DetectorSettings

TURN_PAUSE_S = 3.0
"""A pause this long gives the floor up, even if the other party says nothing (well over the
~240 ms natural gap and the 0.3-1 s pauses inside a turn)."""

FLOOR_TAKE_S = 1.0
"""The other party takes the floor once they have talked this long (backchannels are
shorter, DESIGN.md §5)."""


class _Turn:
    __slots__ = ("last", "longest", "start")

    def __init__(self) -> None:
        self.start: int | None = None
        """First frame of the open turn, or None."""
        self.last = 0
        """Just after the turn's last speech frame so far."""
        self.longest = 0
        """Longest turn of the call, in frames."""

    def length(self) -> int:
        return 0 if self.start is None else max(0, self.last - self.start)


class Turns:
    """Both parties' turns; a monologue event for the agent."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.turns = {Stream.AGENT: _Turn(), Stream.CUSTOMER: _Turn()}
        self.monologue = False
        self.pause_frames = frames(TURN_PAUSE_S)
        self.floor_frames = frames(FLOOR_TAKE_S)
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.monologue_max_s = s.monologue_max_s
        self.monologue_frames = frames(s.monologue_max_s)

    def start_call(self, frame: int) -> None:
        for t in self.turns.values():
            t.longest = 0
            if t.start is not None:
                t.start = max(t.start, frame)

    def longest_s(self, stream: Stream) -> float:
        """The party's longest turn this call, the open one included, in seconds."""
        t = self.turns[stream]
        return max(t.longest, t.length()) * FRAME_S

    def change(self, stream: Stream, change: SpurtChange, spurts: TalkSpurts) -> list[Event]:
        """A spurt of ``stream`` started or stopped (frame indices from ``spurts``)."""
        t = self.turns[stream]
        if change is SpurtChange.START:
            if t.start is not None and spurts.spurt_start - t.last >= self.pause_frames:
                return self._close(stream) + self._open(stream, spurts.spurt_start)
            if t.start is None:
                return self._open(stream, spurts.spurt_start)
            return []
        t.last = max(t.last, spurts.spurt_end)
        t.longest = max(t.longest, t.length())
        if spurts.spurt_end - spurts.spurt_start >= self.floor_frames:
            return self._floor_taken(stream, spurts.spurt_start)
        return []

    def judge(self, now: int, agent: TalkSpurts, customer: TalkSpurts) -> list[Event]:
        """End of a segment at frame ``now``: floors taken by spurts still going, pauses
        that ended a turn, and the agent's monologue."""
        out: list[Event] = []
        for stream, sp, other in ((Stream.AGENT, agent, customer),
                                  (Stream.CUSTOMER, customer, agent)):
            t = self.turns[stream]
            if sp.active:
                if t.start is None and not other.active:
                    # Talked on through the other's turn: the floor is back once they stop.
                    self._open(stream, max(sp.spurt_start, other.spurt_end))
                t.last = max(t.last, sp.last_speech + 1)
                if now - sp.spurt_start >= self.floor_frames:
                    out += self._floor_taken(stream, sp.spurt_start)
            elif t.start is not None and now - t.last >= self.pause_frames:
                out += self._close(stream)
        agent_turn = self.turns[Stream.AGENT]
        if not self.monologue and agent_turn.length() >= self.monologue_frames:
            self.monologue = True
            out.append(event(Kind.MONOLOGUE, Phase.BEGIN, Stream.AGENT, agent_turn.start, now,
                             threshold_s=self.monologue_max_s))
        return out

    def close(self, frame: int) -> list[Event]:
        """End of the call or input: the open turns end at their last speech."""
        return self._close(Stream.AGENT) + self._close(Stream.CUSTOMER)

    def _open(self, stream: Stream, start: int) -> list[Event]:
        t = self.turns[stream]
        t.start = start
        t.last = max(t.last, start)
        return []

    def _floor_taken(self, stream: Stream, since: int) -> list[Event]:
        """``stream`` has talked for the floor length from ``since``: the other party's turn,
        if it began before, ended at their last speech."""
        other = Stream.CUSTOMER if stream is Stream.AGENT else Stream.AGENT
        t = self.turns[other]
        if t.start is not None and t.start < since:
            t.last = min(t.last, since)  # whatever they said over it was not their turn
            return self._close(other)
        return []

    def _close(self, stream: Stream) -> list[Event]:
        t = self.turns[stream]
        if t.start is None:
            return []
        t.longest = max(t.longest, t.length())
        out: list[Event] = []
        if stream is Stream.AGENT and self.monologue:
            self.monologue = False
            out.append(event(Kind.MONOLOGUE, Phase.END, Stream.AGENT, t.start, t.last,
                             duration_s=t.length() * FRAME_S, threshold_s=self.monologue_max_s))
        t.start = None
        return out
