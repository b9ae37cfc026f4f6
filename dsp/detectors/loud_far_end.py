"""Loud far end: what reaches the agent's ear is too loud, as an A-weighted level over the
last ``loud_far_end_window_s``.

This is not the customer's ``too_loud`` under another name. ``too_loud`` judges the
customer's *speech* level on the line (ITU-T P.56 active level, pauses left out) against
-12 dBFS: a hot line, which says nothing of the ear. ``loud_far_end`` judges *everything the
agent hears* (speech, pauses, hold music, tones, line noise), A-weighted and as an equivalent
level (LAeq) like the exposure it feeds, and, once ``[hearing] dbspl_at_0dbfs`` is known, at
the ear in dB(A) SPL against ``loud_far_end_dba`` (85 dB(A): a level that, held for the day,
reaches the EU upper action value). The same -12 dBFS customer is 75 dB(A) on one headset at
one volume and 95 on another; only this threshold can tell. Uncalibrated it falls back to a
dBFS threshold (``loud_far_end_dbfs``, -15 dBFS: about a customer talking without pause at
the ``too_loud`` level) and says so in the event (``calibrated`` = 0).

The detector also sums the far end's A-weighted energy per segment for the daily exposure
(:mod:`dsp.exposure`), read through :attr:`LoudFarEnd.energy_fs2_s` and
:attr:`LoudFarEnd.seconds`; per segment and in frame order, so the totals are the same
whatever the chunking.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from dsp import FRAME_S
from dsp.condition import BEGIN, END, Condition
from dsp.detectors import LEVEL_HYSTERESIS_DB, carry, event
from dsp.events import Event, Kind, Phase, Stream
from dsp.hearing import HearingSettings, a_weighted_power
from dsp.party import SEGMENT_FRAMES


class LoudFarEnd:
    """The far end's A-weighted LAeq over a sliding window, judged once per segment."""

    def __init__(self, settings: HearingSettings) -> None:
        self.cond: Condition | None = None
        self._seg: list[np.ndarray] = []
        """The current segment's far-end frames so far."""
        self._seg_frames = 0
        self._window: deque[float] = deque()
        self.energy_fs2_s = 0.0
        """A-weighted far-end energy since creation (Σ mean square · s, full-scale units)."""
        self.seconds = 0.0
        """Seconds of far-end audio behind :attr:`energy_fs2_s`."""
        self.laeq_dbfs: float | None = None
        """The last judged window's A-weighted level (dBFS)."""
        self.worst: float | None = None
        """The loudest window (on the threshold's scale) of the condition in progress: an
        ``END`` carries it, its own level being the quieter one that ended it."""
        self.configure(settings)

    def configure(self, s: HearingSettings) -> None:
        self.dbspl_at_0dbfs = s.sensitivity
        self.threshold = s.loud_far_end_dba if s.calibrated else s.loud_far_end_dbfs
        self.window_segments = max(1, round(s.loud_far_end_window_s / (SEGMENT_FRAMES * FRAME_S)))
        while len(self._window) > self.window_segments:
            self._window.popleft()
        self.cond = carry(self.cond, 1, 1)

    def update(self, frame: int, frames: np.ndarray) -> list[Event]:
        """Far-end frames (n × 320 at 16 kHz) starting at frame index ``frame``.

        The frames are only kept here: their A-weighted power is taken once per segment, for
        the segment's frames at once, when the level is judged. Per block it was a dozen
        numpy calls every 40 ms for a figure read once a second."""
        x = np.asarray(frames, dtype=np.float32)
        n = x.shape[0]
        out: list[Event] = []
        k = 0
        while k < n:
            take = min(n - k, SEGMENT_FRAMES - (frame + k) % SEGMENT_FRAMES)
            part = x[k:k + take]
            self._seg_frames += take
            k += take
            if (frame + k) % SEGMENT_FRAMES == 0:
                # Measured now: the caller's frames as they are, with no copy kept.
                self._seg.append(part)
                out += self._end_segment(frame + k)
            else:
                self._seg.append(part.copy())  # kept past this call: the caller may reuse it
        return out

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [self._event(Phase.END, cond.start, cond.end)]

    @property
    def level(self) -> float | None:
        """The last window's level on the threshold's scale: dB(A) SPL when calibrated, else
        A-weighted dBFS."""
        if self.laeq_dbfs is None:
            return None
        return self.laeq_dbfs + (self.dbspl_at_0dbfs or 0.0)

    def _end_segment(self, end: int) -> list[Event]:
        seg = a_weighted_power(self._seg[0] if len(self._seg) == 1 else np.concatenate(self._seg))
        self._seg.clear()
        nframes = self._seg_frames
        self._seg_frames = 0
        total = float(seg.sum())
        self.energy_fs2_s += total * FRAME_S
        self.seconds += nframes * FRAME_S
        self._window.append(total / nframes)
        if len(self._window) > self.window_segments:
            self._window.popleft()
        if len(self._window) < self.window_segments:
            return []
        ms = sum(self._window) / len(self._window)
        self.laeq_dbfs = 10.0 * math.log10(ms) if ms > 1e-12 else -120.0
        level = self.level
        assert level is not None
        cond = self.cond
        assert cond is not None
        if level > self.threshold:
            self.worst = level if self.worst is None else max(self.worst, level)
        elif not cond.active:
            self.worst = None
        r = cond.update_many(end - SEGMENT_FRAMES, SEGMENT_FRAMES, level > self.threshold,
                             level <= self.threshold - LEVEL_HYSTERESIS_DB)
        if r is BEGIN:
            cond.start = max(0, end - self.window_segments * SEGMENT_FRAMES)
            return [self._event(Phase.BEGIN, cond.start, end)]
        if r is END:
            return [self._event(Phase.END, cond.start, cond.end)]
        return []

    def _event(self, phase: Phase, start: int, end: int) -> Event:
        calibrated = self.dbspl_at_0dbfs is not None
        data: dict[str, str | int | float] = {"calibrated": int(calibrated)}
        level = self.level
        unit = "dba" if calibrated else "dbfs"
        if level is not None:
            data[f"level_{unit}"] = level
        data[f"threshold_{unit}"] = self.threshold
        if phase is Phase.END and self.worst is not None:
            data[f"worst_level_{unit}"] = self.worst
            self.worst = None
        return event(Kind.LOUD_FAR_END, phase, Stream.CUSTOMER, start, end, **data)
