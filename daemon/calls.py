"""Calls: when one starts and ends, and its summary.

A call starts either automatically, when the far end has spoken for ``call_start_speech_s``
(a softphone plays nothing to the headset between calls), or explicitly through the control
socket; it ends after ``call_end_silence_s`` of far-end silence (automatic calls only) or
explicitly. Each call gets an id (uuid4 hex); at its end its summary is
:func:`dsp.report.build_report` over the call's stats and events, exactly the fields of
``callwatch analyze``, with event times relative to the call's start.

The journal that survives a crash is :mod:`daemon.journal`; the control socket that starts
and ends calls by hand is :mod:`daemon.control`.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from daemon.config import CaptureSettings
from dsp import ANALYSIS_RATE
from dsp.events import Event
from dsp.report import build_report

START_WINDOW_S = 10.0
"""Far-end speech counts towards a call start if it falls within this many seconds."""

QUIET_AFTER_CALL_S = 2.0
"""After a call ends, the far end must be silent this long before its speech can count
towards an automatic call: what it says as the call ends (or as the agent ends it by hand
while the customer is still talking) belongs to the ended call."""

CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Call:
    id: str
    started_s: float
    """Pipeline time (analysis seconds) of the start."""
    start_sample: int
    auto: bool
    wall_start: float
    events: list[Event] = field(default_factory=list)


class CallTracker:
    """Starts and ends calls; the processing loop drives it with pipeline time."""

    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings
        self.call: Call | None = None
        self.count = 0
        self._speech: list[tuple[float, float]] = []  # (time, seconds of far-end speech)
        self._last_far_speech = 0.0
        self._wait_for_quiet = False
        """A call just ended while the far end may still be talking: its speech belongs to
        the ended call, so no automatic call starts until the far end has fallen quiet."""

    def observe(self, now_s: float, far_speech_s: float, far_speaking: bool) -> str | None:
        """Pipeline time ``now_s`` and the far end's cumulative speech seconds; returns
        "start" or "end" when an automatic call should start or end."""
        if far_speaking:
            self._last_far_speech = now_s
        self._speech.append((now_s, far_speech_s))
        while self._speech and now_s - self._speech[0][0] > START_WINDOW_S:
            self._speech.pop(0)
        if not self.settings.auto_calls:
            return None
        if self.call is None:
            if self._wait_for_quiet:
                if now_s - self._last_far_speech < QUIET_AFTER_CALL_S:
                    return None
                self._wait_for_quiet = False
                self._speech = [(now_s, far_speech_s)]
            recent = far_speech_s - self._speech[0][1]
            if recent >= self.settings.call_start_speech_s:
                return "start"
        elif self.call.auto and now_s - max(self._last_far_speech, self.call.started_s) \
                >= self.settings.call_end_silence_s:
            return "end"
        return None

    def start(self, now_s: float, sample: int, wall: float, auto: bool,
              call_id: str | None = None) -> Call:
        self.call = Call(call_id or uuid.uuid4().hex, now_s, sample, auto, wall)
        self._last_far_speech = now_s
        self.count += 1
        return self.call

    def add_events(self, events: list[Event]) -> None:
        if self.call is not None:
            self.call.events.extend(events)

    def end(self, stats: Any, closing: list[Event], now_s: float) -> tuple[Call, dict[str, Any]]:
        """Finish the call: its summary in the ``callwatch.analysis/1`` shape."""
        call = self.call
        assert call is not None
        self.call = None
        self._speech.clear()
        self._wait_for_quiet = True
        self._last_far_speech = max(self._last_far_speech, now_s)
        return call, self._summary(call, stats, closing, now_s)

    def running_summary(self, stats: Any, now_s: float) -> dict[str, Any]:
        """The summary the current call would have if it ended now (for the journal)."""
        assert self.call is not None
        return self._summary(self.call, stats, [], now_s)

    @staticmethod
    def _summary(call: Call, stats: Any, closing: list[Event], now_s: float) -> dict[str, Any]:
        s0 = call.start_sample
        rel = [dataclasses.replace(e, start=max(0, e.start - s0), end=max(0, e.end - s0))
               for e in (*call.events, *closing)]
        return build_report(stats, rel, now_s - call.started_s, ANALYSIS_RATE)
