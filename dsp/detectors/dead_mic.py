"""Dead mic: the agent's mic gives nothing for ``mic_dead_min_s`` while the far end keeps
talking (a muted or unplugged headset, not a pause).

"Nothing" is digital silence or a signal without variance (a muted or disconnected input,
whatever its level), or every frame under ``mic_dead_dbfs``. A quiet room on a good headset also
sits under -70 dBFS while the agent listens, though, and agents often listen for the first
10-20 s of a call while the customer explains: so a mic whose frames all sit under the
threshold counts as dead only :data:`MIC_DEAD_DROP_DB` below it until the agent has been
heard, and after that only that far below the room level it had then (a working mic never
goes quieter than its own room). A muted or unplugged input gives digital silence or a flat
level, which counts at once.
"""

from __future__ import annotations

import math

import numpy as np

from dsp import FRAME_S
from dsp.condition import BEGIN, END, NOTHING, Condition
from dsp.detectors import LEVEL_HYSTERESIS_DB, carry, event
from dsp.events import Event, Kind, Phase, Stream
from dsp.party import SEGMENT_FRAMES, frames, segments
from dsp.settings import DetectorSettings

MIC_DEAD_FAR_SPEECH_S = 3.0
"""A dead mic is reported only once the far end has talked this long during it."""

MIC_DEAD_DROP_DB = 10.0
"""Under ``mic_dead_dbfs``, a mic is dead only this far below its room level (once the agent
was heard) or below the threshold (before)."""

FLAT_DB = 0.05
"""Frame levels within this of each other across a whole segment: no variance (any real mic
noise varies by tenths of a dB from one 20 ms frame to the next)."""


class DeadMic:
    """Fed the agent's frame levels and the far end's activity; judged once per segment."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.cond: Condition | None = None
        self.far = 0
        """Far-end talk-spurt frames since the dead run began."""
        self.seg_dead = 0
        self.seg_alive = False
        self.seg_far = 0
        self.seg_min = math.inf
        self.seg_max = -math.inf
        self.room_dbfs: float | None = None
        """The mic's room level when the agent was last heard (None until then)."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.threshold_dbfs = s.mic_dead_dbfs
        self.cond = carry(self.cond, segments(s.mic_dead_min_s), 1)

    def heard(self, room_dbfs: float | None) -> None:
        """The agent spoke in this segment, over a room at ``room_dbfs`` (if known)."""
        if room_dbfs is not None:
            self.room_dbfs = room_dbfs

    def add(self, agent_rms_dbfs: np.ndarray, far_active_frames: int) -> None:
        """Frames of the current segment."""
        # ufunc reductions, not the ndarray methods: their wrappers cost more than a live
        # block's two frames.
        lo = float(np.minimum.reduce(agent_rms_dbfs))
        hi = float(np.maximum.reduce(agent_rms_dbfs))
        self.seg_dead += int(np.count_nonzero(agent_rms_dbfs < self.threshold_dbfs))
        self.seg_alive |= hi >= self.threshold_dbfs + LEVEL_HYSTERESIS_DB
        self.seg_min = min(self.seg_min, lo)
        self.seg_max = max(self.seg_max, hi)
        self.seg_far += far_active_frames

    def _dead_segment(self) -> bool:
        if self.seg_max - self.seg_min < FLAT_DB:
            return True
        if self.seg_dead < SEGMENT_FRAMES:
            return False
        below = self.threshold_dbfs if self.room_dbfs is None else self.room_dbfs
        return self.seg_max < below - MIC_DEAD_DROP_DB

    def judge(self, seg_start: int, end: int) -> list[Event]:
        """End of a segment."""
        cond = self.cond
        assert cond is not None
        out: list[Event] = []
        dead = self._dead_segment()
        if dead:
            if cond.bad_run == 0:
                self.far = 0
            self.far += self.seg_far
        was_active = cond.active
        # Before the agent is heard, coming back means clearing the threshold with a margin;
        # after, any segment that is not dead will do.
        alive = not dead and (self.seg_alive or self.room_dbfs is not None)
        r = cond.update(seg_start, dead, alive)
        if r is BEGIN and self.far < frames(MIC_DEAD_FAR_SPEECH_S):
            cond.active = False  # dead, but the far end has not talked through it yet
            r = NOTHING
        if r is BEGIN:
            out.append(event(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, cond.start, end,
                             threshold_dbfs=self.threshold_dbfs, far_speech_s=self.far * FRAME_S))
        elif r is END and was_active:
            out.append(event(Kind.MIC_DEAD, Phase.END, Stream.AGENT, cond.start, cond.end,
                             threshold_dbfs=self.threshold_dbfs))
        self.seg_dead = 0
        self.seg_alive = False
        self.seg_far = 0
        self.seg_min, self.seg_max = math.inf, -math.inf
        return out

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [event(Kind.MIC_DEAD, Phase.END, Stream.AGENT, cond.start, cond.end,
                      threshold_dbfs=self.threshold_dbfs)]
