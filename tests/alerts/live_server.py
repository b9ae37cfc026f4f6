"""Talking to a real AlertServer in tests: the ``hello`` it is started with, and clients that
validate everything the server sends against the protocol's schema.

Shared by the server's, the gate's and the token's tests (tests/alerts/conftest.py starts the
server), so each speaks to the server one way.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time

import jsonschema
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from alerts import protocol
from alerts.policy import AlertPolicy
from alerts.server import AlertServer
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream

VALIDATOR = jsonschema.Draft202012Validator(protocol.schema())
HELLO = {"version": "0.1.0", "agent": "ana@ws-17", "devices": {"agent": "headset_mic",
                                                               "customer": "speaker_monitor"}}


def ws_url(srv: AlertServer, token: str | None = None) -> str:
    return f"{srv.url}?token={srv.token if token is None else token}"


def alert_msg(n: int = 1, state: str = "firing") -> dict:
    policy = AlertPolicy()
    [a] = policy.update([Event(Kind.NOISE, Phase.BEGIN, Stream.AGENT, 0, 5 * ANALYSIS_RATE,
                               {"noise_floor_dbfs": -40.0, "threshold_dbfs": -45.0,
                                "seq": n})], now=1000.0 + n)
    msg = protocol.alert_message(a)
    msg["alert"]["state"] = state
    return msg


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict:
    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    VALIDATOR.validate(msg)  # everything the server sends must match the schema
    return msg


async def recv_type(ws: ClientConnection, type_: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if msg["type"] == type_:
            return msg


async def handshake_status(url: str, **kw) -> int:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, open_timeout=5, **kw):
            pass
    return info.value.response.status_code


async def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def http_get(srv: AlertServer, path: str, host: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{srv.port}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body
