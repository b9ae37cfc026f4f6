"""Clipping: more than ``clipping_min_ratio`` of a segment's samples at the clip level."""

from __future__ import annotations

from dsp import FRAME_LEN
from dsp.condition import BEGIN, END, Condition
from dsp.detectors import carry, event
from dsp.events import Event, Kind, Phase, Stream
from dsp.party import SEGMENT_FRAMES, segments
from dsp.settings import DetectorSettings


class Clipping:
    """One party's clipping, judged per segment; resolves after ``resolve_s`` of clean
    segments. (The clip level itself, ``clip_level``, is applied when frames are measured.)"""

    def __init__(self, stream: Stream, settings: DetectorSettings) -> None:
        self.stream = stream
        self.cond: Condition | None = None
        self.worst_ratio = 0.0
        """The highest clipped share of a segment since the condition began."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.threshold_ratio = s.clipping_min_ratio
        self.cond = carry(self.cond, 1, segments(s.resolve_s))

    def judge(self, seg_start: int, end: int, clipped: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        ratio = clipped / (SEGMENT_FRAMES * FRAME_LEN)
        was_active = cond.active
        r = cond.update(seg_start, ratio > self.threshold_ratio, clipped == 0)
        if r is BEGIN:
            self.worst_ratio = ratio
            return [event(Kind.CLIPPING, Phase.BEGIN, self.stream, seg_start, end,
                          clipped_ratio=ratio, threshold_ratio=self.threshold_ratio)]
        if was_active:
            self.worst_ratio = max(self.worst_ratio, ratio)
        if r is END:
            return [self._end(cond.start, cond.end)]
        return []

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [self._end(cond.start, cond.end)]

    def _end(self, start: int, end: int) -> Event:
        """The END, with the highest share of clipped samples a segment had while it held
        (added to the contract: the BEGIN's ``clipped_ratio`` is its first segment's)."""
        return event(Kind.CLIPPING, Phase.END, self.stream, start, end,
                     threshold_ratio=self.threshold_ratio, worst_clipped_ratio=self.worst_ratio)
