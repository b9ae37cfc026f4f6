"""The publisher: one object per result for the event log and the page, and the alert
counters the metrics export."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from alerts import protocol
from alerts.policy import AlertPolicy, AlertSettings
from daemon.calls import Call
from daemon.device_event import DeviceEvent, DeviceEventKind
from daemon.logjson import EventLog
from daemon.publish import Publisher
from daemon.state import DaemonState
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream


class FakeServer:
    """What the publisher calls on the alert server, recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[dict[str, Any], str]] = []
        self.hello: dict[str, Any] = {}

    def publish(self, message: dict[str, Any], topic: str) -> None:
        json.dumps(message, allow_nan=False)  # what the real server does first
        self.published.append((message, topic))

    def set_hello_info(self, **info: Any) -> None:
        self.hello.update(info)


def publisher(server: bool = True) -> tuple[Publisher, io.StringIO, FakeServer]:
    out = io.StringIO()
    pub = Publisher(EventLog([out]), DaemonState(agent_id="ana@ws-17"))
    fake = FakeServer()
    if server:
        pub.server = fake  # type: ignore[assignment]
    return pub, out, fake


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def noise_alerts() -> tuple[AlertPolicy, list[Any]]:
    policy = AlertPolicy(AlertSettings(cooldown_s=0, resolve_s=0))
    data = {"level_dbfs": -40.0, "threshold_dbfs": -45.0}
    fired = policy.update([Event(Kind.NOISE, Phase.BEGIN, Stream.AGENT, 0, ANALYSIS_RATE,
                                 data)], 10.0)
    return policy, fired


def test_an_alert_is_converted_once_and_the_log_and_the_page_get_the_same_object(monkeypatch):
    pub, out, server = publisher()
    policy, fired = noise_alerts()
    assert fired
    calls = []
    real = protocol.alert_to_json

    def counting(alert):
        calls.append(alert)
        return real(alert)

    monkeypatch.setattr(protocol, "alert_to_json", counting)
    pub.alerts(fired, policy)
    assert calls == fired
    logged = records(out)
    assert [r["event"] for r in logged] == ["alert"] * len(fired)
    sent = [m for m, topic in server.published if topic == "alerts"]
    assert [m["type"] for m in sent] == ["alert"] * len(fired)
    for record, message in zip(logged, sent, strict=True):
        assert {k: v for k, v in record.items() if k not in ("ts", "event")} == message["alert"]


def test_alert_counters_count_what_fired_and_what_is_active():
    pub, _, _ = publisher(server=False)
    policy, fired = noise_alerts()
    pub.alerts(fired, policy)
    assert pub.state.alerts_fired["noise", "agent"] == 1
    assert pub.state.alerts_active["noise", "agent"] == 1
    pub.alerts([], policy)  # nothing changed: the counters stay
    assert pub.state.alerts_active["noise", "agent"] == 1
    # by the side each is about: the customer's noisy line, the customer's talk-over, dead air
    events = [Event(Kind.NOISE, Phase.BEGIN, Stream.CUSTOMER, 0, ANALYSIS_RATE,
                    {"level_dbfs": -40.0, "threshold_dbfs": -45.0}),
              Event(Kind.TALK_OVER, Phase.BEGIN, None, 0, ANALYSIS_RATE,
                    {"initiator": "customer"}),
              Event(Kind.SILENCE, Phase.BEGIN, None, 0, ANALYSIS_RATE, {"threshold_s": 5.0})]
    pub.alerts(policy.update(events, 11.0), policy)
    assert {k: n for k, n in pub.state.alerts_active.items() if n} == {
        ("noise", "agent"): 1, ("noise", "customer"): 1, ("talk_over", "customer"): 1,
        ("silence", ""): 1}


def test_without_a_server_everything_is_logged_and_nothing_else_happens():
    pub, out, server = publisher(server=False)
    pub.call_started("c1", auto=False, at=1.0)
    pub.levels(None, 1.0)  # type: ignore[arg-type]  # never read without a server
    assert [r["event"] for r in records(out)] == ["call_started"]
    assert server.published == []


def test_events_carry_their_latency_only_when_captured_live():
    pub, out, _ = publisher()
    e = Event(Kind.TALK_OVER, Phase.BEGIN, None, 0, ANALYSIS_RATE, {"initiator": "agent"})
    call = Call("c1", started_s=12.5, start_sample=200000, auto=False, wall_start=0.0)
    pub.events([e], call)
    pub.events([e], call, t0=0.0)
    pub.events([e], None)
    replayed, live, idle = records(out)
    assert "latency_ms" not in replayed and replayed["call_id"] == "c1"
    assert live["latency_ms"] > 0 and live["kind"] == "talk_over"
    # where the call started, on the events' clock: the summary counts from there
    assert replayed["call_start_s"] == 12.5
    assert idle["call_id"] is None and "call_start_s" not in idle


@pytest.mark.parametrize(("type_", "state"), [(DeviceEventKind.DEVICE_LOST, "lost"),
                                               (DeviceEventKind.DEVICE_UP, "up"),
                                               (DeviceEventKind.DEVICE_RESTORED, "restored")])
def test_a_device_that_changes_state_goes_to_the_page_too(type_, state):
    pub, out, server = publisher()
    ev = DeviceEvent(type_, "agent", "Jabra", reason="unplugged", down_s=1.23456, restarts=2)
    assert pub.device(ev, {"agent": "Jabra", "customer": None}) is True
    (record,) = records(out)
    assert record["event"] == type_ and record["stream"] == "agent"
    ((message, topic),) = server.published
    assert topic == "devices" and message["state"] == state
    assert server.hello == {"devices": {"agent": "Jabra", "customer": None}}


def test_supervisor_news_is_only_logged():
    pub, out, server = publisher()
    assert pub.device(DeviceEvent(DeviceEventKind.SUPERVISOR_ERROR, "", "", reason="boom"),
                      {}) is False
    assert pub.device(DeviceEvent(DeviceEventKind.DEVICES_RESCANNED, "", "", reason="stale",
                                  data={"sources": 3}), {}) is False
    assert [(r["event"], r.get("error"), r.get("sources")) for r in records(out)] == [
        ("supervisor_error", "boom", None), ("devices_rescanned", None, 3)]
    assert server.published == []
