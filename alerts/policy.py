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

The settings live in :mod:`alerts.policy_settings`, the alert, its wording and the severity
order in :mod:`alerts.alert`; this module is the state machine that decides *when*.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from alerts.alert import (
    TALK_OVER_BY_AGENT,
    TALK_OVER_BY_CUSTOMER,
    Alert,
    Party,
    describe,
    most_severe_first,
    party_of,
    severity_rank,
    split_data,
)
from alerts.policy_settings import AlertSettings
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream

__all__ = ["TALK_OVER_BY_AGENT", "TALK_OVER_BY_CUSTOMER", "Alert", "AlertPolicy",
           "AlertSettings"]

Key = tuple[Kind, Party]
_ALL_PARTIES: tuple[Party, ...] = (Stream.AGENT, Stream.CUSTOMER, None)
_RESOLVE_AT_END: frozenset[Kind] = frozenset({Kind.SILENCE})
"""Kinds whose nudge goes the moment their condition is over (dead air: at the first speech)."""


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
        return sorted(alerts, key=severity_rank)

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

    def update(self, events: Iterable[Event], now: float,
               position: int | None = None) -> list[Alert]:
        """Feed new events (in order) at time ``now``; returns the alerts that changed state,
        firings most severe first, then resolutions.

        ``position``: the sample index (at :data:`dsp.ANALYSIS_RATE`) that ``now`` stands
        for. With it, a condition's resolution is counted from when it really ended: a
        detector may know an ``END`` only some time after the fact (a talk-over is closed
        once no later overlap can still join it), and the nudge must not stay up that much
        longer. Without it, from ``now``."""
        out = self._advance(now)
        for ev in events:
            if ev.phase is Phase.BEGIN:
                self._begin(ev, now, out)
            else:
                late_s = 0.0 if position is None else max(0, position - ev.end) / ANALYSIS_RATE
                self._end(ev, now, now - late_s, out)
        out.extend(self._advance(now))
        return most_severe_first(out)

    def next_due(self) -> float | None:
        """When the next timer runs out (a delayed or held nudge fires, one waiting out
        ``resolve_s`` resolves, a snooze ends); None without timers. A caller that updates
        only now and then must update by then, and not with events from past it: the timers
        are advanced to ``now`` before the events are taken."""
        times = [p.due for p in self._pending.values()]
        times += [f.resolve_at for f in self._firing.values() if f.resolve_at is not None]
        times += self._snoozed.values()
        return min(times, default=None)

    @property
    def awaiting_end(self) -> bool:
        """A nudge that goes the moment its condition is over (dead air) is showing: a caller
        that passes events only now and then should pass them promptly, or it lingers."""
        return any(k in _RESOLVE_AT_END for k, _ in self._firing)

    def tick(self, now: float) -> list[Alert]:
        """Advance the timers (delays, allowances, resolution, snoozes) to ``now``; call it
        regularly."""
        return most_severe_first(self._advance(now))

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

    def _end(self, ev: Event, now: float, ended: float, out: list[Alert]) -> None:
        key = (ev.kind, party_of(ev))
        pending = self._pending.pop(key, None)
        if pending is not None:
            held = pending.allowance_at > now
            self.counts["suppressed_cooldown" if held else "too_short"] += 1
            return
        firing = self._firing.get(key)
        if firing is None or firing.resolve_at is not None:
            return
        values, _ = split_data(ev.data.items())
        firing.alert = replace(firing.alert, values={**firing.alert.values, **values})
        if ev.kind in _RESOLVE_AT_END:
            self._resolve(key, now, out)
        else:
            firing.resolve_at = ended + self._s.resolve_s

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
        values, thresholds = split_data(ev.data.items())
        severity, message = describe(self._s, ev)
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
