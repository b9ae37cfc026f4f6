"""The live WebSocket protocol, version 1: message builders and the client-message parser.

Every frame is one JSON object ``{"v": 1, "type": ...}``; ``alerts/protocol.schema.json`` is
the schema and ``docs/protocol.md`` the reference with examples. Builders return plain dicts
(the server serialises them once per publish); the processing loop uses them like::

    server.publish(alert_message(alert), "alerts")
    server.publish(levels_message(stats.agent, stats.customer, at=now), "levels")
    server.publish(call_started_message(call_id, started_at=now), "calls")
    server.publish(call_ended_message(call_id, ended_at=now, summary=report), "calls")
    server.publish(device_message("agent", "lost", "Jabra Evolve2 40", at=now), "devices")

Only :mod:`alerts.server` builds ``hello``, ``error``, ``pong``, ``subscribed`` and
``snoozed``, and it parses what clients send with :func:`parse_client_message`, which returns
a typed request or raises :class:`ProtocolError` carrying the ``error`` code to reply with.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, Protocol

from alerts.alert import Alert
from dsp.events import Kind, Stream

VERSION = 1
TOPICS: tuple[str, ...] = ("alerts", "levels", "calls", "devices")
DEFAULT_TOPICS: tuple[str, ...] = ("alerts", "calls", "devices")
"""What a connection receives until it subscribes: levels are opt-in (they are chatty)."""
DEVICE_STATES: tuple[str, ...] = ("up", "lost", "restored")
ERROR_CODES: tuple[str, ...] = (
    "bad_json", "bad_message", "unknown_type", "unsupported_version", "binary_not_supported",
    "snooze_unavailable", "internal",
)
MAX_SNOOZE_MINUTES = 480.0
MIN_DBFS = -120.0
"""Meters clamp silence (``-inf`` dBFS) to this, as JSON has no infinities."""
SUMMARY_SCHEMA = "callwatch.analysis/1"
_SUMMARY_KEYS = ("schema", "duration_s", "sample_rate_hz", "agent", "customer", "talk_over",
                 "events")

ErrorCode = Literal[
    "bad_json", "bad_message", "unknown_type", "unsupported_version", "binary_not_supported",
    "snooze_unavailable", "internal",
]


class ProtocolError(ValueError):
    """A client message the server cannot use; ``code`` goes into the ``error`` reply."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of every message in both directions."""
    text = resources.files("alerts").joinpath("protocol.schema.json").read_text("utf-8")
    return json.loads(text)


# -- server -> client ----------------------------------------------------------------------


def _msg(type_: str, **fields: Any) -> dict[str, Any]:
    return {"v": VERSION, "type": type_, **fields}


def hello_message(
    version: str,
    agent: str | None,
    devices: Mapping[str, str | None],
    topics: Iterable[str] = TOPICS,
    subscribed: Iterable[str] = DEFAULT_TOPICS,
    desktop_notifications: bool = False,
    limits: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The first message on every connection: who and what this daemon is watching."""
    msg = _msg("hello", version=version, agent=agent, devices=dict(devices),
               topics=list(topics), subscribed=list(subscribed),
               desktop_notifications=bool(desktop_notifications))
    if limits:
        msg["limits"] = dict(limits)
    return msg


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """An :class:`~alerts.alert.Alert` as the ``alert`` object of the protocol."""
    return {
        "id": alert.id,
        "kind": alert.kind.value,
        "stream": alert.stream.value if alert.stream is not None else None,
        "severity": alert.severity,
        "state": alert.state,
        "message": alert.message,
        "values": dict(alert.values),
        "thresholds": dict(alert.thresholds),
        "started_at": round(alert.started_at, 3),
        "at": round(alert.at, 3),
    }


def alert_message(alert: Alert | dict[str, Any]) -> dict[str, Any]:
    """A nudge changed state (topic ``alerts``). ``alert`` is the :class:`Alert` or the
    object :func:`alert_to_json` already made of it: the daemon logs that object too, and
    passes it here so that each alert is converted once."""
    return _msg("alert", alert=alert_to_json(alert) if isinstance(alert, Alert) else alert)


class Meter(Protocol):
    """What a live meter needs; :class:`dsp.stats.StreamStats` has these attributes."""

    @property
    def rms_dbfs(self) -> float: ...
    @property
    def peak_dbfs(self) -> float: ...
    @property
    def speaking(self) -> bool: ...
    @property
    def noise_floor_dbfs(self) -> float | None: ...


def _db(x: float | None) -> float | None:
    if x is None:
        return None
    if math.isnan(x):
        return MIN_DBFS
    return round(min(max(float(x), MIN_DBFS), 20.0), 1)


def _meter(m: Meter | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "rms_dbfs": _db(m.rms_dbfs),
        "peak_dbfs": _db(m.peak_dbfs),
        "speaking": bool(m.speaking),
        "noise_floor_dbfs": _db(m.noise_floor_dbfs),
    }


def levels_message(agent: Meter | None, customer: Meter | None, at: float) -> dict[str, Any]:
    """Live meters (topic ``levels``); pass ``pipeline.stats.agent``/``.customer``."""
    return _msg("levels", at=round(at, 3), agent=_meter(agent), customer=_meter(customer))


def call_started_message(call_id: str, started_at: float) -> dict[str, Any]:
    """A call began (topic ``calls``)."""
    return _msg("call_started", call_id=_call_id(call_id), started_at=round(started_at, 3))


def call_ended_message(call_id: str, ended_at: float, summary: Mapping[str, Any]) -> dict[str, Any]:
    """A call ended (topic ``calls``); ``summary`` is :func:`dsp.report.build_report`'s dict."""
    missing = [k for k in _SUMMARY_KEYS if k not in summary]
    if missing or summary.get("schema") != SUMMARY_SCHEMA:
        raise ValueError(
            f"call summary is not a {SUMMARY_SCHEMA} report (missing: "
            f"{', '.join(missing) or 'nothing'}; schema={summary.get('schema')!r}); "
            "build it with dsp.report.build_report"
        )
    return _msg("call_ended", call_id=_call_id(call_id), ended_at=round(ended_at, 3),
                summary=dict(summary))


def device_message(
    stream: Stream | str, state: str, device: str | None, at: float, detail: str | None = None
) -> dict[str, Any]:
    """A capture device came up, was lost or was restored (topic ``devices``)."""
    if state not in DEVICE_STATES:
        raise ValueError(f"device state {state!r}: must be one of {', '.join(DEVICE_STATES)}")
    msg = _msg("device", stream=Stream(stream).value, state=state, device=device,
               at=round(at, 3))
    if detail:
        msg["detail"] = detail[:300]
    return msg


def error_message(code: ErrorCode, message: str) -> dict[str, Any]:
    """The reply to a client message the server could not use."""
    return _msg("error", code=code, message=message[:300])


def pong_message(at: float, ping_id: str | int | None = None) -> dict[str, Any]:
    msg = _msg("pong", at=round(at, 3))
    if ping_id is not None:
        msg["id"] = ping_id
    return msg


def subscribed_message(topics: Iterable[str]) -> dict[str, Any]:
    return _msg("subscribed", topics=sorted(topics, key=TOPICS.index))


def snoozed_message(kind: Kind | str, minutes: float, until: float) -> dict[str, Any]:
    return _msg("snoozed", kind=Kind(kind).value, minutes=minutes, until=round(until, 3))


def clock(t: object) -> str:
    """A message's Unix time (``at``, ``started_at``, ...) as people read it in a terminal:
    local ``HH:MM:SS``, as ``callwatch tail`` and the daemon's readable log print alerts
    (``--:--:--`` for what is not a time)."""
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(t))


def _call_id(call_id: str) -> str:
    if not isinstance(call_id, str) or not 1 <= len(call_id) <= 200:
        raise ValueError(f"call_id {call_id!r}: must be a string of 1 to 200 characters")
    return call_id


# -- client -> server ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Replace the connection's topics."""

    topics: frozenset[str]


@dataclass(frozen=True, slots=True)
class Snooze:
    """Silence one alert kind for ``minutes``."""

    kind: Kind
    minutes: float


@dataclass(frozen=True, slots=True)
class Ping:
    """Application-level liveness check, answered by ``pong``."""

    id: str | int | None = None


ClientRequest = Subscribe | Snooze | Ping
_CLIENT_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # type -> (required fields, optional fields), besides v and type
    "subscribe": ({"topics"}, set()),
    "snooze": ({"kind", "minutes"}, set()),
    "ping": (set(), {"id"}),
}


def parse_client_message(text: str | bytes) -> ClientRequest:
    """A client frame -> typed request; raises :class:`ProtocolError` with the reply code."""
    if isinstance(text, bytes | bytearray | memoryview):
        raise ProtocolError(
            "binary_not_supported", "binary frames are not supported; send JSON text"
        )
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("bad_message", 'a message must be a JSON object {"v": 1, "type": ...}')
    if "v" not in msg:
        raise ProtocolError("bad_message", 'missing "v": add "v": 1')
    if msg["v"] != VERSION or isinstance(msg["v"], bool):
        raise ProtocolError("unsupported_version", f'"v": {msg["v"]!r} unsupported; use "v": 1')
    type_ = msg.get("type")
    if not isinstance(type_, str) or type_ not in _CLIENT_FIELDS:  # a list is unhashable
        known = ", ".join(_CLIENT_FIELDS)
        raise ProtocolError("unknown_type", f"unknown type {type_!r}; client types: {known}")
    required, optional = _CLIENT_FIELDS[type_]
    missing = required - msg.keys()
    if missing:
        raise ProtocolError("bad_message", f"{type_}: missing {', '.join(sorted(missing))}")
    extra = msg.keys() - required - optional - {"v", "type"}
    if extra:
        raise ProtocolError("bad_message", f"{type_}: unknown field {', '.join(sorted(extra))}")
    if type_ == "subscribe":
        return _parse_subscribe(msg)
    if type_ == "snooze":
        return _parse_snooze(msg)
    return _parse_ping(msg)


def _parse_subscribe(msg: dict[str, Any]) -> Subscribe:
    topics = msg["topics"]
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ProtocolError("bad_message", 'subscribe: "topics" must be a list of strings')
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise ProtocolError(
            "bad_message", f"subscribe: unknown topic {unknown[0]!r}; topics: {', '.join(TOPICS)}"
        )
    return Subscribe(frozenset(topics))


def _parse_snooze(msg: dict[str, Any]) -> Snooze:
    try:
        kind = Kind(msg["kind"])
    except ValueError:
        kinds = ", ".join(k.value for k in Kind)
        raise ProtocolError(
            "bad_message", f"snooze: unknown kind {msg['kind']!r}; kinds: {kinds}"
        ) from None
    minutes = msg["minutes"]
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not 0 < minutes <= MAX_SNOOZE_MINUTES
    ):
        raise ProtocolError(
            "bad_message", f"snooze: minutes must be a number above 0 and at most "
            f"{MAX_SNOOZE_MINUTES:g}, got {minutes!r}"
        )
    return Snooze(kind, float(minutes))


def _parse_ping(msg: dict[str, Any]) -> Ping:
    ping_id = msg.get("id")
    if ping_id is not None and (
        isinstance(ping_id, bool)
        or not isinstance(ping_id, str | int)
        or (isinstance(ping_id, str) and len(ping_id) > 100)
    ):
        raise ProtocolError(
            "bad_message", 'ping: "id" must be a string (<= 100 chars) or an integer'
        )
    return Ping(ping_id)
