"""One nudge: the :class:`Alert` a client receives, who it is about, what it says, and how
nudges rank.

Kept apart from the policy's state machine (:mod:`alerts.policy`) because this is the part
clients, the protocol and the tests read: the wording and the severity order are product
decisions that change on their own, without touching when a nudge fires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from alerts.policy_settings import AlertSettings, Severity
from dsp.events import Event, Kind, Stream, rounded

__all__ = [
    "ALERT_PARTIES",
    "TALK_OVER_BY_AGENT",
    "TALK_OVER_BY_CUSTOMER",
    "Alert",
    "Party",
    "State",
    "describe",
    "most_severe_first",
    "party_of",
    "severity_rank",
    "split_data",
]

State = Literal["firing", "resolved"]
Party = Stream | None
"""Who a nudge is about: a talk-over's initiator, a condition's stream, ``None`` for dead air."""


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

    @property
    def party(self) -> Party:
        """Whom the nudge is about, as :func:`party_of` its event."""
        return _party(self.kind, self.stream, self.values.get("initiator"))


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
_SEVERITY_RANK: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


ALERT_PARTIES: dict[Kind, tuple[Party, ...]] = {
    **{k: (Stream.AGENT,) for k in _AGENT_MESSAGES},
    **{k: (Stream.AGENT, Stream.CUSTOMER) for k in _CUSTOMER_MESSAGES},
    Kind.TALK_OVER: (Stream.AGENT, Stream.CUSTOMER),
    Kind.SILENCE: (None,),
    **{k: (Stream.CUSTOMER,) for k in _HEARING},
}
"""Whom each kind's nudges can be about (:func:`party_of`): the hearing kinds' sound came
from the far end, dead air is the call's."""


def _party(kind: Kind, stream: Stream | None, initiator: object) -> Party:
    if kind is Kind.TALK_OVER:
        return Stream.CUSTOMER if initiator == Stream.CUSTOMER.value else Stream.AGENT
    return stream


def party_of(ev: Event) -> Party:
    """The party an event is about: the initiator of a talk-over (the agent when the detector
    does not say), else the event's stream."""
    return _party(ev.kind, ev.stream, ev.data.get("initiator"))


def _is_threshold(key: str) -> bool:
    return key.startswith(("threshold", "min_", "max_"))


def split_data(data: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Event data -> (measured values, thresholds), floats rounded for display."""
    values: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}
    for key, value in data:
        v = rounded(value) if isinstance(value, float) else value
        (thresholds if _is_threshold(key) else values)[key] = v
    return values, thresholds


def severity_rank(alert: Alert) -> int:
    """Sort key: critical first, then warning, then info."""
    return _SEVERITY_RANK[alert.severity]


def most_severe_first(alerts: list[Alert]) -> list[Alert]:
    """Firings most severe first, then resolutions in their order. Stable, and an alert that
    fired and resolved in the same call still comes out firing first (ids never repeat)."""
    firing = sorted((a for a in alerts if a.state == "firing"), key=severity_rank)
    return firing + [a for a in alerts if a.state != "firing"]


def describe(s: AlertSettings, ev: Event) -> tuple[Severity, str]:
    """The severity and wording of the nudge ``ev`` starts, under settings ``s``."""
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
