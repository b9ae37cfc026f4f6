"""Every builder's output validates against the schema; client messages parse or fail clearly."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jsonschema
import pytest

from alerts import protocol
from alerts.policy import AlertPolicy, AlertSettings
from alerts.protocol import Ping, ProtocolError, Snooze, Subscribe, parse_client_message
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream

VALIDATOR = jsonschema.Draft202012Validator(protocol.schema())


def valid(msg: dict) -> dict:
    """Validate the JSON round trip (what a client sees), not the Python dict."""
    wire = json.loads(json.dumps(msg, allow_nan=False))
    VALIDATOR.validate(wire)
    return wire


def invalid(msg: dict) -> bool:
    return not VALIDATOR.is_valid(json.loads(json.dumps(msg)))


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(protocol.schema())
    assert protocol.schema()["$schema"].endswith("2020-12/schema")


@dataclass
class FakeMeter:
    rms_dbfs: float
    peak_dbfs: float
    speaking: bool
    noise_floor_dbfs: float | None


def alerts_for_every_kind():
    policy = AlertPolicy(AlertSettings(cooldown_s=0, resolve_s=0, clipping_delay_s=0))
    out = []
    for kind in Kind:
        stream = None if kind in (Kind.TALK_OVER, Kind.SILENCE) else Stream.AGENT
        data = {"initiator": "customer"} if kind is Kind.TALK_OVER else {
            "level_dbfs": -40.123, "threshold_dbfs": -38.0}
        out += policy.update([Event(kind, Phase.BEGIN, stream, 0, ANALYSIS_RATE, data)], 10.0)
        out += policy.update([Event(kind, Phase.END, stream, 0, 2 * ANALYSIS_RATE, data)], 12.0)
    return out


def test_alert_messages_validate_for_every_kind_and_state():
    alerts = alerts_for_every_kind()
    assert {(a.kind, a.state) for a in alerts} == {(k, s) for k in Kind
                                                   for s in ("firing", "resolved")}
    for a in alerts:
        wire = valid(protocol.alert_message(a))
        assert wire["alert"]["id"] == a.id and wire["alert"]["kind"] == a.kind.value


def test_levels_message_clamps_silence_and_validates():
    msg = protocol.levels_message(
        FakeMeter(float("-inf"), float("-inf"), False, None),
        FakeMeter(-23.456, -6.02, True, -61.2),
        at=1764550000.123456,
    )
    wire = valid(msg)
    assert wire["agent"] == {"rms_dbfs": -120.0, "peak_dbfs": -120.0, "speaking": False,
                             "noise_floor_dbfs": None}
    assert wire["customer"]["rms_dbfs"] == -23.5 and wire["customer"]["speaking"] is True
    valid(protocol.levels_message(None, FakeMeter(float("nan"), 0.0, False, -50.0), at=1.0))


def test_levels_message_accepts_the_pipelines_stream_stats():
    import numpy as np

    from dsp.pipeline import Pipeline
    from dsp.settings import DetectorSettings

    p = Pipeline(DetectorSettings(), agent_rate=16000, customer_rate=16000)
    tone = (0.1 * np.sin(np.arange(16000) * 0.2)).astype(np.float32)
    p.push(agent=tone, customer=np.zeros(16000, np.float32))
    wire = valid(protocol.levels_message(p.stats.agent, p.stats.customer, at=5.0))
    assert -25 < wire["agent"]["rms_dbfs"] < -18
    assert wire["customer"]["rms_dbfs"] == -120.0


def test_other_server_messages_validate():
    valid(protocol.hello_message("0.1.0", "ana@ws-17", {"agent": "Jabra", "customer": None},
                                 desktop_notifications=True,
                                 limits={"max_message_bytes": 4096, "queue_max_messages": 256}))
    valid(protocol.hello_message("0.1.0", None, {}))
    valid(protocol.call_started_message("call-42", started_at=1764550000.0))
    valid(protocol.device_message("agent", "lost", "headset_mic", at=1.0, detail="stalled"))
    valid(protocol.device_message(Stream.CUSTOMER, "restored", None, at=2.0))
    for code in protocol.ERROR_CODES:
        valid(protocol.error_message(code, "x" * 1000))
    valid(protocol.pong_message(3.0))
    valid(protocol.pong_message(3.0, "abc"))
    valid(protocol.subscribed_message({"levels", "alerts"}))
    valid(protocol.snoozed_message("noise", 10, until=600.0))


def test_call_ended_carries_a_real_analysis_report():
    import numpy as np

    from dsp.pipeline import Pipeline
    from dsp.report import build_report
    from dsp.settings import DetectorSettings

    p = Pipeline(DetectorSettings(), agent_rate=16000, customer_rate=16000)
    events = p.push(agent=np.zeros(16000, np.float32), customer=np.zeros(16000, np.float32))
    events += p.finish()
    report = build_report(p.stats, events, 1.0, 16000)
    wire = valid(protocol.call_ended_message("call-1", ended_at=9.0, summary=report))
    assert wire["summary"]["schema"] == "callwatch.analysis/1"
    with pytest.raises(ValueError, match="build_report"):
        protocol.call_ended_message("call-1", 9.0, {"schema": "callwatch.analysis/1"})


def test_builders_reject_bad_arguments():
    with pytest.raises(ValueError, match="device state"):
        protocol.device_message("agent", "gone", None, at=1.0)
    with pytest.raises(ValueError):
        protocol.device_message("supervisor", "up", None, at=1.0)
    with pytest.raises(ValueError, match="call_id"):
        protocol.call_started_message("", 1.0)


def test_schema_rejects_what_the_protocol_forbids():
    assert invalid({"v": 2, "type": "ping"})
    assert invalid({"v": 1, "type": "nope"})
    assert invalid({"v": 1, "type": "snooze", "kind": "noise", "minutes": 0})
    assert invalid({"v": 1, "type": "subscribe", "topics": ["gossip"]})
    a = protocol.alert_message(alerts_for_every_kind()[0])
    a["alert"]["severity"] = "meh"
    assert invalid(a)


def test_client_messages_parse_to_typed_requests():
    assert parse_client_message('{"v":1,"type":"subscribe","topics":["alerts","levels"]}') == \
        Subscribe(frozenset({"alerts", "levels"}))
    assert parse_client_message('{"v":1,"type":"subscribe","topics":[]}') == Subscribe(frozenset())
    assert parse_client_message('{"v":1,"type":"snooze","kind":"noise","minutes":10}') == \
        Snooze(Kind.NOISE, 10.0)
    assert parse_client_message('{"v":1,"type":"ping"}') == Ping(None)
    assert parse_client_message('{"v":1,"type":"ping","id":7}') == Ping(7)
    for text in ('{"v":1,"type":"subscribe","topics":["alerts"]}',
                 '{"v":1,"type":"snooze","kind":"echo","minutes":0.5}', '{"v":1,"type":"ping"}'):
        VALIDATOR.validate(json.loads(text))


@pytest.mark.parametrize(("frame", "code", "words"), [
    ("not json", "bad_json", "not JSON"),
    ("", "bad_json", "not JSON"),
    ("[1, 2]", "bad_message", "JSON object"),
    ('{"type":"ping"}', "bad_message", '"v"'),
    ('{"v":2,"type":"ping"}', "unsupported_version", '"v": 1'),
    ('{"v":true,"type":"ping"}', "unsupported_version", '"v": 1'),
    ('{"v":1,"type":"alert"}', "unknown_type", "client types"),
    ('{"v":1}', "unknown_type", "None"),
    ('{"v":1,"type":"subscribe"}', "bad_message", "missing topics"),
    ('{"v":1,"type":"subscribe","topics":"alerts"}', "bad_message", "list of strings"),
    ('{"v":1,"type":"subscribe","topics":["gossip"]}', "bad_message", "gossip"),
    ('{"v":1,"type":"snooze","kind":"typo","minutes":5}', "bad_message", "kinds:"),
    ('{"v":1,"type":"snooze","kind":"noise","minutes":0}', "bad_message", "above 0"),
    ('{"v":1,"type":"snooze","kind":"noise","minutes":481}', "bad_message", "at most 480"),
    ('{"v":1,"type":"snooze","kind":"noise","minutes":"5"}', "bad_message", "number"),
    ('{"v":1,"type":"ping","id":{"a":1}}', "bad_message", "id"),
    ('{"v":1,"type":"ping","extra":1}', "bad_message", "unknown field extra"),
    (b"\x00\x01", "binary_not_supported", "binary"),
    ("[" * 100000, "bad_json", "not JSON"),
])
def test_bad_client_messages_raise_protocol_error_with_a_code(frame, code, words):
    with pytest.raises(ProtocolError) as info:
        parse_client_message(frame)
    assert info.value.code == code
    assert words in info.value.message
    valid(protocol.error_message(info.value.code, info.value.message))
