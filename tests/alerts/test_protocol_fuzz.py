"""Fuzzing the WebSocket protocol parser: any frame gives a request or an ``error`` reply that
is valid protocol; nothing else escapes (the server would drop the client's connection)."""

from __future__ import annotations

import json

import jsonschema
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alerts import protocol
from alerts.protocol import ProtocolError
from dsp.events import Kind

FUZZ = settings(max_examples=200, deadline=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1.0, True, "1", 2, None]) | json_values,
        "type": st.sampled_from(["subscribe", "snooze", "ping", "hello", ""]) | json_values,
        "topics": st.lists(st.sampled_from([*protocol.TOPICS, "x"])) | json_values,
        "kind": st.sampled_from([k.value for k in Kind]) | json_values,
        "minutes": st.floats() | st.integers() | json_values,
        "id": st.text(max_size=120) | st.integers() | json_values,
    },
)


def _outcome(frame: str | bytes) -> dict:
    """What the server sends back for ``frame`` (the reply builders it uses)."""
    try:
        request = protocol.parse_client_message(frame)
    except ProtocolError as exc:
        assert exc.code in protocol.ERROR_CODES
        return protocol.error_message(exc.code, exc.message)
    if isinstance(request, protocol.Subscribe):
        return protocol.subscribed_message(request.topics)
    if isinstance(request, protocol.Ping):
        return protocol.pong_message(0.0, request.id)
    assert 0 < request.minutes <= protocol.MAX_SNOOZE_MINUTES
    return protocol.snoozed_message(request.kind, request.minutes, 0.0)


VALIDATOR = jsonschema.validators.validator_for(protocol.schema())(protocol.schema())


def _valid(reply: dict) -> None:
    text = json.dumps(reply, allow_nan=False)  # what the server serialises
    VALIDATOR.validate(json.loads(text))


@FUZZ
@given(fields.map(lambda d: json.dumps(d)))
def test_structured_messages_give_a_request_or_an_error_reply(frame):
    _valid(_outcome(frame))


@FUZZ
@given(st.text(max_size=200) | st.binary(max_size=200)
       | st.integers(1, 100_000).map(lambda n: "[" * n))
@example('{"v": 1, "type": []}')  # found by this fuzzer: a TypeError escaped the parser
def test_any_frame_gives_a_request_or_an_error_reply(frame):
    _valid(_outcome(frame))
