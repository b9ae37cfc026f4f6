"""Where the processing loop's results leave it: the event log and the nudge page.

Every result the loop produces (a detector event, an alert, the live levels, a call that
starts or ends, a device that goes or comes back) is a line in the event log and, with the
alert server running, a WebSocket message on its topic. :class:`Publisher` builds each result
once and hands the same object to both, so the log and the page cannot disagree: an alert's
:func:`alerts.protocol.alert_to_json` object is the log record's fields and the ``alert`` of
the WebSocket message. It also keeps the alert counters of :class:`~daemon.state.DaemonState`
that the metrics export, and times finished calls, since they count exactly what is
published.

The publisher runs on the processing loop's thread only; the server's ``publish`` is the
thread-safe hand-over to the server's own loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from alerts import protocol
from alerts.policy import Alert, AlertPolicy
from alerts.server import AlertServer
from daemon.calls import Call
from daemon.device_event import DeviceEvent, DeviceEventKind
from daemon.logjson import EventLog
from daemon.metrics import Metrics
from daemon.metrics_state import party_label
from daemon.state import DaemonState
from dsp import ANALYSIS_RATE
from dsp.events import Event
from dsp.stats import CallStats

__all__ = ["Publisher"]

_DEVICE_STATES = {DeviceEventKind.DEVICE_LOST: "lost", DeviceEventKind.DEVICE_UP: "up"}
"""Supervisor event type -> the protocol's device state (anything else is a restore)."""


class Publisher:
    """The event log and, once started, the alert server: one place for both outputs."""

    def __init__(self, log: EventLog, state: DaemonState) -> None:
        self.log = log
        self.state = state
        self.server: AlertServer | None = None
        """The nudge page's server, set when it has started (``None``: log only)."""
        self.metrics: Metrics | None = None
        """The Prometheus metrics, set when they have started: they time finished calls."""

    def events(self, events: list[Event], call: Call | None, t0: float | None = None) -> None:
        """Log detector events, with the call they belong to: its id and where it started
        (``call_start_s``, on the stream's clock as the events' times are, so a record lines
        up with the call summary, whose times count from the call's start). ``t0``: the
        monotonic capture time of the aligned stream's first sample, for live capture; each
        record then carries ``latency_ms``, from the capture of the sample that confirmed the
        event to now."""
        mono = time.monotonic()
        where: dict[str, Any] = {"call_id": None} if call is None else {
            "call_id": call.id, "call_start_s": round(call.started_s, 3)}
        for e in events:
            extra = {}
            if t0 is not None:
                extra["latency_ms"] = round(1000 * (mono - t0 - e.end / ANALYSIS_RATE), 1)
            self.log.emit(e.kind.value, phase=e.phase.value, **e.to_json(), **where, **extra)

    def alerts(self, alerts: list[Alert], policy: AlertPolicy) -> None:
        """Log and send the alerts that changed state, then count what is active now
        (``policy.active`` is read only when something changed)."""
        if not alerts:
            return
        for a in alerts:
            body = protocol.alert_to_json(a)
            self.log.emit("alert", **body)
            if a.state == "firing":
                self.state.alerts_fired[a.kind.value, party_label(a.party)] += 1
            if self.server is not None:
                self.server.publish(protocol.alert_message(body), "alerts")
        self.state.alerts_active.clear()
        for a in policy.active:
            self.state.alerts_active[a.kind.value, party_label(a.party)] += 1

    def levels(self, stats: CallStats, at: float) -> None:
        """The live meters (WebSocket only: a log line four times a second says nothing)."""
        if self.server is not None:
            self.server.publish(protocol.levels_message(stats.agent, stats.customer, at),
                                "levels")

    def call_started(self, call_id: str, auto: bool, at: float) -> None:
        self.log.emit("call_started", call_id=call_id, auto=auto)
        if self.server is not None:
            self.server.publish(protocol.call_started_message(call_id, at), "calls")

    def call_ended(self, call_id: str, reason: str, summary: Mapping[str, Any],
                   at: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_call_end(float(summary["duration_s"]))
        self.log.emit("call_ended", call_id=call_id, reason=reason, summary=summary)
        if self.server is not None:
            self.server.publish(protocol.call_ended_message(call_id, at, summary), "calls")

    def device(self, ev: DeviceEvent, devices: Mapping[str, str | None]) -> bool:
        """Log a supervisor event; a device that went or came back is also sent to the page,
        whose later ``hello`` messages name ``devices``. True if a device changed state."""
        if ev.type is DeviceEventKind.SUPERVISOR_ERROR:
            self.log.emit(ev.type, error=ev.reason)
            return False
        if ev.type is DeviceEventKind.DEVICES_RESCANNED:
            self.log.emit(ev.type, why=ev.reason, **ev.data)
            return False
        fields: dict[str, Any] = {"stream": ev.stream, "device": ev.device}
        if ev.type is DeviceEventKind.DEVICE_LOST:
            fields["reason"] = ev.reason
        elif ev.type is DeviceEventKind.DEVICE_RESTORED:
            fields.update(down_s=round(ev.down_s, 3), restarts=ev.restarts, after=ev.reason)
        self.log.emit(ev.type, **fields)
        if self.server is not None:
            state = _DEVICE_STATES.get(ev.type, "restored")
            self.server.publish(protocol.device_message(ev.stream, state, ev.device, time.time(),
                                                        ev.reason or None), "devices")
            self.server.set_hello_info(devices=dict(devices))
        return True
