"""Too quiet / too loud: a party's speech level over the last ``level_window_s`` of speech
against ``too_quiet_dbfs`` and ``too_loud_dbfs``, with a hysteresis to resolve.

Both parties are judged: a quiet agent is asked to move the mic closer, a quiet customer (a
weak line or a far-away handset) is something the agent can act on too (raise the volume, ask
them to speak up)."""

from __future__ import annotations

from dsp import FRAME_S
from dsp.condition import BEGIN, END, Condition
from dsp.detectors import LEVEL_HYSTERESIS_DB, carry, event
from dsp.events import Event, Kind, Phase
from dsp.party import SEGMENT_FRAMES, Party, frames
from dsp.settings import DetectorSettings

EARLY_QUIET_FRAMES = 100
EARLY_QUIET_MARGIN_DB = 8.0
"""Before the level window is full, a party is too quiet if two seconds of speech are this far
under the threshold."""


class Levels:
    """One party's level conditions, judged at the end of each segment that had speech."""

    def __init__(self, party: Party, settings: DetectorSettings) -> None:
        self.party = party
        self.quiet: Condition | None = None
        self.loud: Condition | None = None
        self.worst: dict[Kind, float] = {}
        """The lowest (too quiet) or highest (too loud) level judged while the condition
        held, for its ``END``: the level at the end has recovered, which alone reads as if
        the condition never was."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.too_quiet_dbfs = s.too_quiet_dbfs
        self.too_loud_dbfs = s.too_loud_dbfs
        self.window_frames = round(s.level_window_s / FRAME_S)
        """How far back a confirmed level condition is dated."""
        resolve = frames(s.resolve_s)
        self.quiet = carry(self.quiet, 1, resolve)
        self.loud = carry(self.loud, 1, resolve)

    def judge(self, end: int, call_start: int) -> list[Event]:
        level = self.party.level_dbfs()
        quiet, loud = self.too_quiet_dbfs, self.too_loud_dbfs
        if level is None:
            # A very quiet party yields few speech frames (most of their syllables are
            # under the noise gate), and might never fill the window: far enough under
            # the threshold, two seconds of speech are enough to say so.
            early = self.party.voice_dbfs(EARLY_QUIET_FRAMES)
            if early is None or early >= quiet - EARLY_QUIET_MARGIN_DB:
                return []
            level = early
        out: list[Event] = []
        for cond, kind, bad, good, threshold in (
            (self.quiet, Kind.TOO_QUIET, level < quiet, level >= quiet + LEVEL_HYSTERESIS_DB,
             quiet),
            (self.loud, Kind.TOO_LOUD, level > loud, level <= loud - LEVEL_HYSTERESIS_DB, loud),
        ):
            assert cond is not None
            r = cond.update_many(end, SEGMENT_FRAMES, bad, good)
            if r is BEGIN:
                cond.start = max(end - self.window_frames, call_start)
                self.worst[kind] = level
                out.append(event(kind, Phase.BEGIN, self.party.stream, cond.start, end,
                                 level_dbfs=level, threshold_dbfs=threshold))
            elif r is END:
                out.append(self._end(kind, cond))
            elif cond.active:
                worse = min if kind is Kind.TOO_QUIET else max
                self.worst[kind] = worse(self.worst.get(kind, level), level)
        return out

    def close(self, frame: int) -> list[Event]:
        out = []
        for cond, kind in ((self.quiet, Kind.TOO_QUIET), (self.loud, Kind.TOO_LOUD)):
            assert cond is not None
            if cond.close(frame):
                out.append(self._end(kind, cond))
        return out

    def _end(self, kind: Kind, cond: Condition) -> Event:
        threshold = self.too_quiet_dbfs if kind is Kind.TOO_QUIET else self.too_loud_dbfs
        level = self.party.level_dbfs()
        data: dict[str, str | int | float] = {"threshold_dbfs": threshold}
        if level is not None:
            data["level_dbfs"] = level
        worst = self.worst.pop(kind, None)
        if worst is not None:
            data["worst_level_dbfs"] = worst
        return event(kind, Phase.END, self.party.stream, cond.start, cond.end, **data)
