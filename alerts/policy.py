"""The alert policy: detector events in, agent nudges out. Pure: no clock, no I/O.

The detectors in :mod:`dsp` say *what is happening* (``BEGIN`` when a condition is confirmed,
``END`` when it is over). This module decides *what to tell the agent*, because a false nudge
costs more than a missed one, and a missed warning costs more than a missed tip (see the
design's alert-cadence row). Every rule works on a **party**: the initiator of a talk-over,
the stream of a level, noise, clipping, echo or mic condition, and the whole call (``None``)
for dead air. So "the customer is talking over you" and "you're talking over the customer"
are two nudges with two allowances, and one can never hold the other back.

- **Fire at confirmation**: a nudge fires at the ``now`` of the update that brings its
  ``BEGIN`` (unless a ``<kind>_delay_s`` asks for an extra wait, as clipping does).
- **Allowance**: one nudge per kind and party per ``cooldown_s``. A ``BEGIN`` inside the
  window is held, not dropped: if its condition is still going on when the window closes, it
  fires then; if it ends first, it is counted as ``suppressed_cooldown``.
- **De-duplication**: a second ``BEGIN`` of the same kind and party while its alert is firing
  does not fire again; one inside the ``resolve_s`` window after its ``END`` keeps the same
  alert firing.
- **Resolution**: ``resolve_s`` after the condition's ``END``; dead air resolves at its
  ``END`` (the first speech): a nudge to check in with a customer who is already talking
  again is wrong at once.
- **Warnings outrank info**: besides the per-party allowances, alerts that fire in one call
  come back most severe first (then the resolutions), and :attr:`active` lists the most
  severe first, so a client that shows one nudge shows the warning.
- Per-kind enable flags, extra minimum durations and severities; :meth:`AlertPolicy.snooze`
  silences a kind until a time (the agent's "snooze" button on one nudge: it silences the
  party of the nudge that is showing, not the other party's).

Time is ``now``: seconds on any monotonic clock the caller chooses (the daemon passes its wall
clock so ``started_at``/``at`` are meaningful to clients). Typical use by the processing loop::

    policy = AlertPolicy(AlertSettings())
    for alert in policy.update(pipeline.push(agent=a, customer=c), now=time.time()):
        server.publish(protocol.alert_message(alert), "alerts")
    for alert in policy.tick(time.time()):      # when there were no events: timers
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

    cooldown_s: float = setting(
        60.0, 0.0, 3600.0, "at most one nudge per kind and party (who) in this window"
    )
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
    fast_speech_enabled: bool = setting(True, doc="nudge when the agent talks fast for a while")
    monologue_enabled: bool = setting(True, doc="nudge after a long agent monologue")
    acoustic_shock_enabled: bool = setting(
        True, doc="tell the agent at once when a sudden loud sound hits their ear")
    loud_far_end_enabled: bool = setting(
        True, doc="nudge when what the agent hears is too loud (lower the headset volume)")
    exposure_enabled: bool = setting(
        True, doc="tell the agent when their daily sound exposure reaches an action value")
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
    fast_speech_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a pace nudge")
    monologue_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a monologue nudge")
    acoustic_shock_delay_s: float = setting(
        0.0, 0.0, 600.0, "extra wait before an acoustic-shock nudge")
    loud_far_end_delay_s: float = setting(
        0.0, 0.0, 600.0, "extra wait before a loud-far-end nudge")
    exposure_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before an exposure nudge")
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
    fast_speech_severity: str = _severity("info", "agent speaking fast")
    monologue_severity: str = _severity("info", "agent monologue")
    # Hearing safety: about the agent's ear, whichever stream carried the sound
    acoustic_shock_severity: str = _severity("critical", "sudden loud sound at the agent's ear")
    loud_far_end_severity: str = _severity("warning", "what the agent hears is too loud")
    exposure_severity: str = _severity(
        "warning", "daily sound exposure reached the lower action value (80 dB(A))")
    exposure_upper_severity: str = _severity(
        "critical", "daily sound exposure reached the upper action value (85 dB(A))")
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
    Kind.FAST_SPEECH: "Slow down a little",
    Kind.MONOLOGUE: "Let the customer speak",
}
_CUSTOMER_MESSAGES: dict[Kind, str] = {
    Kind.TOO_QUIET: "The customer is quiet: raise your volume or ask them to speak up",
    Kind.TOO_LOUD: "The customer is very loud: lower your headset volume",
    Kind.NOISE: "The customer's line is noisy: speak clearly and check they can hear you",
    Kind.CLIPPING: "The customer's audio is distorting",
    Kind.ECHO: "The customer's line has an echo",
    Kind.MIC_DEAD: "The customer's audio is silent",
}
_HEARING_MESSAGES: dict[Kind, str] = {
    Kind.ACOUSTIC_SHOCK: "A sudden loud sound came down the line: take the headset off if it "
                         "hurts, and lower the volume",
    Kind.LOUD_FAR_END: "What you hear is very loud: lower your headset volume",
}
_HEARING: frozenset[Kind] = frozenset({Kind.ACOUSTIC_SHOCK, Kind.LOUD_FAR_END, Kind.EXPOSURE})
"""Kinds about the agent's ear: their own severity and wording although the far end (the
customer stream) carried the sound."""
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


Party = Stream | None
"""Who a nudge is about: a talk-over's initiator, a condition's stream, ``None`` for dead air."""
Key = tuple[Kind, Party]
_SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}
_ALL_PARTIES: tuple[Party, ...] = (Stream.AGENT, Stream.CUSTOMER, None)
_RESOLVE_AT_END: frozenset[Kind] = frozenset({Kind.SILENCE})
"""Kinds whose nudge goes the moment their condition is over (dead air: at the first speech)."""


def party_of(ev: Event) -> Party:
    """The party an event is about: the initiator of a talk-over (the agent when the detector
    does not say), else the event's stream."""
    if ev.kind is Kind.TALK_OVER:
        initiator = ev.data.get("initiator")
        return Stream.CUSTOMER if initiator == Stream.CUSTOMER.value else Stream.AGENT
    return ev.stream


def _most_severe_first(alerts: list[Alert]) -> list[Alert]:
    """Firings most severe first, then resolutions in their order. Stable, and an alert that
    fired and resolved in the same call still comes out firing first (ids never repeat)."""
    firing = sorted((a for a in alerts if a.state == "firing"),
                    key=lambda a: _SEVERITY_RANK[a.severity])
    return firing + [a for a in alerts if a.state != "firing"]


@dataclass(slots=True)
class _Firing:
    alert: Alert
    resolve_at: float | None = None  # set while the condition is over, waiting for resolve_s


@dataclass(slots=True)
class _Pending:
    """A confirmed condition waiting for its extra delay or for its party's allowance."""

    event: Event
    due: float
    allowance_at: float  # when the cooldown of its kind and party ends (-inf: not held)
    started_at: float


class AlertPolicy:
    """Turns events into :class:`Alert` state changes; see the module docstring."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self._s = settings or AlertSettings()
        self._firing: dict[Key, _Firing] = {}
        self._pending: dict[Key, _Pending] = {}
        self._last_fired: dict[Key, float] = {}
        self._snoozed: dict[Key, float] = {}
        self._serial: Counter[Kind] = Counter()
        self.counts: Counter[str] = Counter()
        """Outcomes of BEGIN events: ``fired``, ``resolved``, ``suppressed_cooldown`` (ended
        while its party's allowance was used up), ``suppressed_snooze``,
        ``suppressed_disabled``, ``deduplicated``, ``too_short`` (ended before its delay),
        ``continued`` (came back inside ``resolve_s``), ``held`` (waited for the allowance)."""

    @property
    def settings(self) -> AlertSettings:
        return self._s

    def update_settings(self, settings: AlertSettings) -> None:
        """New settings for future decisions; firing alerts and timers are kept."""
        self._s = settings

    @property
    def active(self) -> list[Alert]:
        """The alerts firing now (including those waiting out ``resolve_s``), most severe
        first, then oldest first."""
        alerts = sorted((f.alert for f in self._firing.values()), key=lambda a: a.at)
        return sorted(alerts, key=lambda a: _SEVERITY_RANK[a.severity])

    def snooze(self, kind: Kind | str, until: float,
               parties: tuple[Party, ...] | None = None) -> None:
        """Silence ``kind`` until ``until``; its firing alerts resolve at the next tick.

        ``parties`` defaults to the parties whose alert of this kind is showing (the agent
        snoozes the nudge in front of them: snoozing "the customer is talking over you" must
        not silence "you're talking over the customer"), or every party if none is showing.
        """
        k = Kind(kind)
        if parties is None:
            parties = tuple(p for (fk, p) in self._firing if fk is k) or _ALL_PARTIES
        for party in parties:
            key = (k, party)
            self._snoozed[key] = max(until, self._snoozed.get(key, until))

    def snoozed_until(self, kind: Kind | str, party: Party | None = None) -> float | None:
        """When the snooze of ``kind`` ends (for ``party``, or the latest of any party)."""
        k = Kind(kind)
        times = [t for (sk, p), t in self._snoozed.items()
                 if sk is k and (party is None or p is party)]
        return max(times) if times else None

    def update(self, events: Iterable[Event], now: float) -> list[Alert]:
        """Feed new events (in order) at time ``now``; returns the alerts that changed state,
        firings most severe first, then resolutions."""
        out = self._advance(now)
        for ev in events:
            if ev.phase is Phase.BEGIN:
                self._begin(ev, now, out)
            else:
                self._end(ev, now, out)
        out.extend(self._advance(now))
        return _most_severe_first(out)

    def tick(self, now: float) -> list[Alert]:
        """Advance the timers (delays, allowances, resolution, snoozes) to ``now``; call it
        regularly."""
        return _most_severe_first(self._advance(now))

    # -- internals ----------------------------------------------------------------------

    def _advance(self, now: float) -> list[Alert]:
        out: list[Alert] = []
        for key, until in list(self._snoozed.items()):
            if until <= now:
                del self._snoozed[key]
        for key, p in list(self._pending.items()):
            if key in self._snoozed:
                del self._pending[key]
                self.counts["suppressed_snooze"] += 1
            elif p.due <= now:
                del self._pending[key]
                self._fire(key, p.event, p.started_at, now, out)
        for key, f in list(self._firing.items()):
            if key in self._snoozed or (f.resolve_at is not None and f.resolve_at <= now):
                self._resolve(key, now, out)
        return out

    def _begin(self, ev: Event, now: float, out: list[Alert]) -> None:
        key = (ev.kind, party_of(ev))
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
        if key in self._snoozed:
            self.counts["suppressed_snooze"] += 1
            return
        last = self._last_fired.get(key)
        allowance_at = last + self._s.cooldown_s if last is not None else float("-inf")
        due = max(now + self._s.delay_s(ev.kind), allowance_at)
        started_at = now - max(0.0, ev.end_s - ev.start_s)
        if due <= now:
            self._fire(key, ev, started_at, now, out)
            return
        if allowance_at > now:
            self.counts["held"] += 1
        self._pending[key] = _Pending(ev, due, allowance_at, started_at)

    def _end(self, ev: Event, now: float, out: list[Alert]) -> None:
        key = (ev.kind, party_of(ev))
        pending = self._pending.pop(key, None)
        if pending is not None:
            held = pending.allowance_at > now
            self.counts["suppressed_cooldown" if held else "too_short"] += 1
            return
        firing = self._firing.get(key)
        if firing is None or firing.resolve_at is not None:
            return
        values, _ = _split(ev.data.items())
        firing.alert = replace(firing.alert, values={**firing.alert.values, **values})
        if ev.kind in _RESOLVE_AT_END:
            self._resolve(key, now, out)
        else:
            firing.resolve_at = now + self._s.resolve_s

    def _resolve(self, key: Key, now: float, out: list[Alert]) -> None:
        f = self._firing.pop(key)
        self.counts["resolved"] += 1
        out.append(replace(f.alert, state="resolved", at=now))

    def _allowed(self, ev: Event) -> bool:
        if not self._s.enabled(ev.kind):
            return False
        if ev.kind is Kind.TALK_OVER and party_of(ev) is Stream.CUSTOMER:
            return self._s.talk_over_by_customer_enabled
        return True

    def _fire(self, key: Key, ev: Event, started_at: float, now: float,
              out: list[Alert]) -> None:
        self._last_fired[key] = now
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
            started_at=round(started_at, 3),
            at=now,
        )
        self._firing[key] = _Firing(alert)
        self.counts["fired"] += 1
        out.append(alert)

    def _describe(self, ev: Event) -> tuple[Severity, str]:
        s = self._s
        if ev.kind is Kind.TALK_OVER:
            if party_of(ev) is Stream.CUSTOMER:
                return s.talk_over_by_customer_severity, TALK_OVER_BY_CUSTOMER  # type: ignore[return-value]
            return s.talk_over_severity, TALK_OVER_BY_AGENT  # type: ignore[return-value]
        if ev.kind in _HEARING:
            return _describe_hearing(s, ev)
        if ev.stream is Stream.CUSTOMER:
            msg = _CUSTOMER_MESSAGES.get(ev.kind, _AGENT_MESSAGES[ev.kind])
            return s.customer_stream_severity, msg  # type: ignore[return-value]
        return getattr(s, f"{ev.kind.value}_severity"), _AGENT_MESSAGES[ev.kind]


def _describe_hearing(s: AlertSettings, ev: Event) -> tuple[Severity, str]:
    """Severity and wording of a hearing-safety nudge."""
    if ev.kind is Kind.EXPOSURE:
        upper = ev.data.get("action") == "upper"
        value = float(ev.data.get("threshold_dba", 85.0 if upper else 80.0))
        advice = " and take a break from the headset" if upper else ""
        severity = s.exposure_upper_severity if upper else s.exposure_severity
        message = (f"Your sound exposure today has reached {value:g} dB(A): lower your headset "
                   f"volume{advice}")
        return severity, message  # type: ignore[return-value]
    return getattr(s, f"{ev.kind.value}_severity"), _HEARING_MESSAGES[ev.kind]
