"""The alert policy: detector events in, agent nudges out. Pure: no clock, no I/O.

The detectors in :mod:`dsp` say *what is happening* (``BEGIN`` when a condition is confirmed,
``END`` when it is over). This module decides *what to tell the agent*, because a false nudge
costs more than a missed one (see the design's alert-cadence row):

- one nudge per kind per ``cooldown_s`` at most: a ``BEGIN`` inside the cooldown window after
  a previous firing of the same kind is suppressed (and counted in :attr:`AlertPolicy.counts`);
- de-duplication: a second ``BEGIN`` of the same kind and stream while its alert is firing does
  not fire again;
- an alert resolves ``resolve_s`` after the condition's ``END``; a ``BEGIN`` inside that window
  keeps the same alert firing instead of nudging again;
- per-kind enable flags, extra minimum durations (``<kind>_delay_s``) and severities;
- :meth:`AlertPolicy.snooze` silences a kind until a time (the agent's "snooze" button).

Time is ``now``: seconds on any monotonic clock the caller chooses (the daemon passes its wall
clock so ``started_at``/``at`` are meaningful to clients). Typical use by the processing loop::

    policy = AlertPolicy(AlertSettings())
    for alert in policy.update(pipeline.push(agent=a, customer=c), now=time.time()):
        server.publish(protocol.alert_message(alert), "alerts")
    for alert in policy.tick(time.time()):      # when there were no events: resolution timers
        server.publish(protocol.alert_message(alert), "alerts")

:class:`AlertPolicy` is not thread-safe: call it from one thread (the processing loop).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from dsp.events import Event, Kind, Phase, Stream
from dsp.settings import setting

Severity = Literal["info", "warning", "critical"]
State = Literal["firing", "resolved"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


def _severity(default: str, doc: str) -> Any:
    """A severity field; ``choices`` lets the config loader reject a misspelt value."""
    return field(default=default, metadata={"choices": SEVERITIES, "help": doc})


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """When to nudge the agent; the ``[alerts]`` table of the config file."""

    cooldown_s: float = setting(60.0, 0.0, 3600.0, "at most one nudge per kind in this window")
    resolve_s: float = setting(
        3.0, 0.0, 60.0, "an alert resolves when its condition has been over for this long"
    )
    # Per-kind switches
    talk_over_enabled: bool = setting(True, doc="nudge when the agent talks over the customer")
    talk_over_by_customer_enabled: bool = setting(
        True, doc="also tell the agent when the customer talks over them"
    )
    too_quiet_enabled: bool = setting(True, doc="nudge when a party's speech level is too low")
    too_loud_enabled: bool = setting(True, doc="nudge when a party's speech level is too high")
    noise_enabled: bool = setting(True, doc="nudge on high background noise")
    clipping_enabled: bool = setting(True, doc="nudge when the audio clips (distorts)")
    echo_enabled: bool = setting(True, doc="nudge when the far end leaks back into the mic")
    silence_enabled: bool = setting(True, doc="nudge on dead air inside a call")
    mic_dead_enabled: bool = setting(True, doc="nudge when the mic looks dead or muted")
    # Minimum durations beyond the detector's own confirmation (0 = fire on BEGIN)
    talk_over_delay_s: float = setting(
        0.0, 0.0, 60.0, "talk-over must still go on this long after detection to nudge"
    )
    too_quiet_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a too-quiet nudge")
    too_loud_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a too-loud nudge")
    noise_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a noise nudge")
    clipping_delay_s: float = setting(
        2.0, 0.0, 600.0, "clipping must last this long after detection (a shout is not a fault)"
    )
    echo_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before an echo nudge")
    silence_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a dead-air nudge")
    mic_dead_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a dead-mic nudge")
    # Severities (agent stream or whole call); the customer's own levels are informational
    talk_over_severity: str = _severity("warning", "agent talks over the customer")
    talk_over_by_customer_severity: str = _severity("info", "customer talks over the agent")
    too_quiet_severity: str = _severity("warning", "agent too quiet")
    too_loud_severity: str = _severity("warning", "agent too loud")
    noise_severity: str = _severity("warning", "noise at the agent's side")
    clipping_severity: str = _severity("warning", "agent audio clipping")
    echo_severity: str = _severity("warning", "echo / speaker leak into the mic")
    silence_severity: str = _severity("info", "dead air")
    mic_dead_severity: str = _severity("critical", "dead or muted mic")
    customer_stream_severity: str = _severity(
        "info", "level, noise and clipping conditions on the customer's side"
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_severity") and getattr(self, f.name) not in SEVERITIES:
                raise ValueError(
                    f"{f.name} = {getattr(self, f.name)!r}: must be one of "
                    + ", ".join(SEVERITIES)
                )

    def enabled(self, kind: Kind) -> bool:
        return bool(getattr(self, f"{kind.value}_enabled"))

    def delay_s(self, kind: Kind) -> float:
        return float(getattr(self, f"{kind.value}_delay_s"))


@dataclass(frozen=True, slots=True)
class Alert:
    """One state of one nudge. The same ``id`` is sent when it fires and when it resolves.

    ``values`` are the measurements from the detector (``level_dbfs``, ``coupling_db``,
    ``initiator``...), ``thresholds`` the limits they were compared with; ``started_at`` is
    when the condition began (``now`` minus the detector's confirmation time), ``at`` when
    this state was reached. Times are in the caller's ``now`` clock.
    """

    id: str
    kind: Kind
    stream: Stream | None
    severity: Severity
    state: State
    message: str
    values: dict[str, str | int | float]
    thresholds: dict[str, str | int | float]
    started_at: float
    at: float


_AGENT_MESSAGES: dict[Kind, str] = {
    Kind.TOO_QUIET: "You sound quiet: move the mic closer",
    Kind.TOO_LOUD: "You sound too loud: move the mic away a little",
    Kind.NOISE: "Background noise is high: mute while you're not speaking",
    Kind.CLIPPING: "Your audio is distorting: move the mic away or lower the mic gain",
    Kind.ECHO: "The customer can hear an echo of themselves: check your headset",
    Kind.SILENCE: "Dead air: check in with the customer",
    Kind.MIC_DEAD: "Your mic may be dead or muted",
}
_CUSTOMER_MESSAGES: dict[Kind, str] = {
    Kind.TOO_QUIET: "The customer is quiet: raise your volume or ask them to speak up",
    Kind.TOO_LOUD: "The customer is very loud: lower your headset volume",
    Kind.NOISE: "The customer's line is noisy: speak clearly and check they can hear you",
    Kind.CLIPPING: "The customer's audio is distorting",
    Kind.ECHO: "The customer's line has an echo",
    Kind.MIC_DEAD: "The customer's audio is silent",
}
TALK_OVER_BY_AGENT = "You're talking over the customer"
TALK_OVER_BY_CUSTOMER = "The customer is talking over you: let them finish"


def _is_threshold(key: str) -> bool:
    return key.startswith(("threshold", "min_", "max_"))


def _split(data: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Event data -> (measured values, thresholds), floats rounded for display."""
    values: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}
    for key, value in data:
        v = round(value, 2) if isinstance(value, float) else value
        (thresholds if _is_threshold(key) else values)[key] = v
    return values, thresholds


@dataclass(slots=True)
class _Firing:
    alert: Alert
    resolve_at: float | None = None  # set while the condition is over, waiting for resolve_s


@dataclass(slots=True)
class _Pending:
    event: Event
    due: float


Key = tuple[Kind, Stream | None]


class AlertPolicy:
    """Turns events into :class:`Alert` state changes; see the module docstring."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self._s = settings or AlertSettings()
        self._firing: dict[Key, _Firing] = {}
        self._pending: dict[Key, _Pending] = {}
        self._last_fired: dict[Kind, float] = {}
        self._snoozed: dict[Kind, float] = {}
        self._serial: Counter[Kind] = Counter()
        self.counts: Counter[str] = Counter()
        """Outcomes of BEGIN events: ``fired``, ``resolved``, ``suppressed_cooldown``,
        ``suppressed_snooze``, ``suppressed_disabled``, ``deduplicated``, ``too_short``
        (ended before its delay), ``continued`` (came back inside ``resolve_s``)."""

    @property
    def settings(self) -> AlertSettings:
        return self._s

    def update_settings(self, settings: AlertSettings) -> None:
        """New settings for future decisions; firing alerts and timers are kept."""
        self._s = settings

    @property
    def active(self) -> list[Alert]:
        """The alerts firing now (including those waiting out ``resolve_s``)."""
        return [f.alert for f in self._firing.values()]

    def snooze(self, kind: Kind | str, until: float) -> None:
        """Silence ``kind`` until ``until``; its firing alerts resolve at the next tick."""
        k = Kind(kind)
        self._snoozed[k] = max(until, self._snoozed.get(k, until))

    def snoozed_until(self, kind: Kind | str) -> float | None:
        return self._snoozed.get(Kind(kind))

    def update(self, events: Iterable[Event], now: float) -> list[Alert]:
        """Feed new events (in order) at time ``now``; returns the alerts that changed state."""
        out = self.tick(now)
        for ev in events:
            if ev.phase is Phase.BEGIN:
                self._begin(ev, now, out)
            else:
                self._end(ev, now, out)
        out.extend(self.tick(now))
        return out

    def tick(self, now: float) -> list[Alert]:
        """Advance the timers (delays, resolution, snoozes) to ``now``; call it regularly."""
        out: list[Alert] = []
        for kind, until in list(self._snoozed.items()):
            if until <= now:
                del self._snoozed[kind]
        for key, p in list(self._pending.items()):
            if key[0] in self._snoozed:
                del self._pending[key]
                self.counts["suppressed_snooze"] += 1
            elif p.due <= now:
                del self._pending[key]
                self._fire(p.event, now, out)
        for key, f in list(self._firing.items()):
            if key[0] in self._snoozed or (f.resolve_at is not None and f.resolve_at <= now):
                del self._firing[key]
                self.counts["resolved"] += 1
                out.append(replace(f.alert, state="resolved", at=now))
        return out

    # -- internals ----------------------------------------------------------------------

    def _begin(self, ev: Event, now: float, out: list[Alert]) -> None:
        key = (ev.kind, ev.stream)
        firing = self._firing.get(key)
        if firing is not None:
            if firing.resolve_at is not None:
                firing.resolve_at = None
                self.counts["continued"] += 1
            else:
                self.counts["deduplicated"] += 1
            return
        if key in self._pending:
            self.counts["deduplicated"] += 1
            return
        if not self._allowed(ev):
            self.counts["suppressed_disabled"] += 1
            return
        if ev.kind in self._snoozed:
            self.counts["suppressed_snooze"] += 1
            return
        delay = self._s.delay_s(ev.kind)
        if delay > 0:
            self._pending[key] = _Pending(ev, now + delay)
        else:
            self._fire(ev, now, out)

    def _end(self, ev: Event, now: float, out: list[Alert]) -> None:
        key = (ev.kind, ev.stream)
        if self._pending.pop(key, None) is not None:
            self.counts["too_short"] += 1
            return
        firing = self._firing.get(key)
        if firing is None or firing.resolve_at is not None:
            return
        values, _ = _split(ev.data.items())
        firing.alert = replace(firing.alert, values={**firing.alert.values, **values})
        firing.resolve_at = now + self._s.resolve_s

    def _allowed(self, ev: Event) -> bool:
        if not self._s.enabled(ev.kind):
            return False
        if ev.kind is Kind.TALK_OVER and ev.data.get("initiator") == Stream.CUSTOMER.value:
            return self._s.talk_over_by_customer_enabled
        return True

    def _fire(self, ev: Event, now: float, out: list[Alert]) -> None:
        last = self._last_fired.get(ev.kind)
        if last is not None and now - last < self._s.cooldown_s:
            self.counts["suppressed_cooldown"] += 1
            return
        self._last_fired[ev.kind] = now
        self._serial[ev.kind] += 1
        values, thresholds = _split(ev.data.items())
        severity, message = self._describe(ev)
        alert = Alert(
            id=f"{ev.kind.value}-{self._serial[ev.kind]}",
            kind=ev.kind,
            stream=ev.stream,
            severity=severity,
            state="firing",
            message=message,
            values=values,
            thresholds=thresholds,
            started_at=round(now - max(0.0, ev.end_s - ev.start_s), 3),
            at=now,
        )
        self._firing[(ev.kind, ev.stream)] = _Firing(alert)
        self.counts["fired"] += 1
        out.append(alert)

    def _describe(self, ev: Event) -> tuple[Severity, str]:
        s = self._s
        if ev.kind is Kind.TALK_OVER:
            if ev.data.get("initiator") == Stream.CUSTOMER.value:
                return s.talk_over_by_customer_severity, TALK_OVER_BY_CUSTOMER  # type: ignore[return-value]
            return s.talk_over_severity, TALK_OVER_BY_AGENT  # type: ignore[return-value]
        if ev.stream is Stream.CUSTOMER:
            msg = _CUSTOMER_MESSAGES.get(ev.kind, _AGENT_MESSAGES[ev.kind])
            return s.customer_stream_severity, msg  # type: ignore[return-value]
        return getattr(s, f"{ev.kind.value}_severity"), _AGENT_MESSAGES[ev.kind]
