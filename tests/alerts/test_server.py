"""A real AlertServer on a free loopback port, driven by real `websockets` clients and sockets."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import socket
import stat
import time
from collections.abc import Iterator

import jsonschema
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from alerts import protocol
from alerts.policy import AlertPolicy
from alerts.server import AlertServer, ServerSettings
from alerts.token import load_or_create_token, token_path
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream

VALIDATOR = jsonschema.Draft202012Validator(protocol.schema())
HELLO = {"version": "0.1.0", "agent": "ana@ws-17", "devices": {"agent": "headset_mic",
                                                               "customer": "speaker_monitor"}}
REPORT = {  # a callwatch.analysis/1 report as dsp.report.build_report shapes it
    "schema": "callwatch.analysis/1", "duration_s": 61.2, "sample_rate_hz": 16000,
    "agent": {"speech_s": 20.1, "active_level_dbfs": -27.3, "noise_floor_dbfs": -62.0,
              "snr_db": 34.7, "clipped_ratio": 0.0},
    "customer": {"speech_s": 25.0, "active_level_dbfs": -25.9, "noise_floor_dbfs": None,
                 "snr_db": None, "clipped_ratio": 0.0},
    "talk_over": {"count": 1, "seconds": 1.4, "by_agent": 1, "by_customer": 0},
    "events": [{"kind": "talk_over", "stream": None, "start_s": 10.0, "end_s": 11.4,
                "initiator": "agent"}],
}


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    """Token files go to a temporary config dir, never the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture
def snoozes() -> list:
    return []


@pytest.fixture
def server(snoozes) -> Iterator[AlertServer]:
    srv = AlertServer(ServerSettings(port=0), HELLO,
                      on_snooze=lambda kind, minutes: snoozes.append((kind, minutes)))
    srv.start()
    yield srv
    srv.stop()


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


# -- token file ---------------------------------------------------------------------------


def test_token_file_is_created_0600_and_reused(config_home):
    assert token_path() == config_home / "callwatch" / "token"
    srv = AlertServer(ServerSettings(port=0), HELLO)
    srv.start()
    srv.stop()
    path = token_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_text().strip() == srv.token and len(srv.token) >= 32
    again = AlertServer(ServerSettings(port=0), HELLO)
    again.start()
    again.stop()
    assert again.token == srv.token
    os.chmod(path, 0o644)                                   # loosened by hand: tightened again
    assert load_or_create_token() == srv.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_token_is_used_and_validated(config_home):
    srv = AlertServer(ServerSettings(port=0, token="a-configured-token-123"), HELLO)
    srv.start()
    srv.stop()
    assert srv.token == "a-configured-token-123"
    assert not token_path().exists()
    with pytest.raises(ValueError, match="16 characters"):
        ServerSettings(token="short")


def test_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = AlertServer(ServerSettings(port=port), HELLO)
        with pytest.raises(RuntimeError, match=rf"cannot listen on 127.0.0.1:{port}.*port"):
            srv.start()


# -- handshake: token, origin, host -------------------------------------------------------------


def test_handshake_refusals_use_the_documented_statuses(server):
    async def main():
        base = server.url
        assert await handshake_status(base) == 401                               # no token
        assert await handshake_status(base + "?token=wrong") == 401               # wrong token
        assert await handshake_status(base, additional_headers={
            "Authorization": "Bearer wrong"}) == 401
        assert await handshake_status(ws_url(server), origin="http://evil.example") == 403
        assert await handshake_status(ws_url(server), origin="null") == 403
        assert await handshake_status(f"ws://127.0.0.1:{server.port}/x?token={server.token}") \
            == 404
        # Accepted: query, bearer header, token subprotocol, own origin.
        async with connect(ws_url(server)) as ws:
            assert (await recv_json(ws))["type"] == "hello"
        async with connect(base, additional_headers={
                "Authorization": f"Bearer {server.token}"}) as ws:
            assert (await recv_json(ws))["type"] == "hello"
        async with connect(base, subprotocols=["callwatch.v1",
                                               f"callwatch.token.{server.token}"]) as ws:
            assert ws.subprotocol == "callwatch.v1"
            assert (await recv_json(ws))["type"] == "hello"
        for origin in (f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}"):
            async with connect(ws_url(server), origin=origin) as ws:
                assert (await recv_json(ws))["type"] == "hello"

    asyncio.run(main())
    assert server.refused_connections == 6


def http_get(srv: AlertServer, path: str, host: str | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{srv.port}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def test_nudge_page_needs_the_token_and_the_right_host(server):
    status, headers, body = http_get(server, f"/?token={server.token}")
    assert status == 200 and b'aria-live="polite"' in body
    assert headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert http_get(server, "/")[0] == 401
    assert http_get(server, "/?token=nope")[0] == 401
    status, headers, body = http_get(server, "/static/app.js")   # no secret in static files
    assert status == 200 and b"WebSocket" in body and "javascript" in headers["Content-Type"]
    assert http_get(server, "/static/style.css")[0] == 200
    assert http_get(server, "/static/../server.py")[0] == 404
    assert http_get(server, "/favicon.ico")[0] == 404
    # DNS rebinding: a hostile name resolving to 127.0.0.1 still sends its own Host header.
    assert http_get(server, f"/?token={server.token}", host=f"evil.example:{server.port}")[0] \
        == 403


def test_max_clients_refuses_with_503():
    srv = AlertServer(ServerSettings(port=0, max_clients=2), HELLO)
    srv.start()

    async def main():
        async with connect(ws_url(srv)), connect(ws_url(srv)):
            await wait_for(lambda: srv.clients == 2)
            assert await handshake_status(ws_url(srv)) == 503

    try:
        asyncio.run(main())
    finally:
        srv.stop()


# -- fan-out ----------------------------------------------------------------------------------


def test_fifty_concurrent_clients_all_receive_a_published_alert(server):
    async def main():
        clients = await asyncio.gather(*(connect(ws_url(server)) for _ in range(50)))
        try:
            for ws in clients:
                assert (await recv_json(ws))["type"] == "hello"
            await wait_for(lambda: server.clients == 50)
            msg = alert_msg()
            server.publish(msg, "alerts")
            got = await asyncio.gather(*(recv_json(ws) for ws in clients))
            assert all(g == msg for g in got)
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))

    asyncio.run(main())


def test_topics_filter_what_a_client_gets(server):
    async def main():
        async with connect(ws_url(server)) as plain, connect(ws_url(server)) as meters:
            hello = await recv_json(plain)
            assert hello["subscribed"] == ["alerts", "calls", "devices"]
            assert hello["agent"] == "ana@ws-17" and hello["devices"]["agent"] == "headset_mic"
            await recv_json(meters)
            await meters.send(json.dumps({"v": 1, "type": "subscribe", "topics": ["levels"]}))
            assert (await recv_json(meters)) == {"v": 1, "type": "subscribed",
                                                 "topics": ["levels"]}
            levels = protocol.levels_message(None, None, at=time.time())
            server.publish(levels, "levels")
            server.publish(alert_msg(), "alerts")
            assert (await recv_json(meters))["type"] == "levels"
            assert (await recv_json(plain))["type"] == "alert"       # no levels before it
            with pytest.raises(TimeoutError):
                await recv_json(meters, timeout=0.2)                 # not subscribed to alerts

    asyncio.run(main())


class StalledClient:
    """Completes the WebSocket handshake on a raw socket, then never reads again."""

    def __init__(self, srv: AlertServer) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", srv.port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /?token={srv.token} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def close(self) -> None:
        self.sock.close()


def test_a_stalled_client_neither_slows_publish_nor_other_clients():
    # A queue deep enough that the reading clients never fall behind it even on a loaded
    # 2-core machine (they share one test process), yet shallower than the burst, so the
    # client that never reads must lose messages.
    srv = AlertServer(ServerSettings(port=0, queue_max_messages=1024), HELLO)
    srv.start()
    stalled = StalledClient(srv)
    total, burst = 1500, 10
    messages = [alert_msg(i) for i in range(total)]
    durations: list[float] = []

    def processing_loop() -> None:
        """Publishes like the daemon's loop: from its own thread, in bursts."""
        for i, msg in enumerate(messages):
            t0 = time.perf_counter()
            srv.publish(msg, "alerts")
            durations.append(time.perf_counter() - t0)
            if i % burst == burst - 1:
                time.sleep(0.01)       # ~1000 messages/s: 200 times the daemon's real rate

    async def reader(ws: ClientConnection) -> list[int]:
        seqs: list[int] = []
        while len(seqs) < total:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "alert":
                seqs.append(msg["alert"]["values"]["seq"])
        return seqs

    async def main():
        clients = [await connect(ws_url(srv)) for _ in range(5)]
        await wait_for(lambda: srv.clients == 6)
        readers = [asyncio.create_task(reader(ws)) for ws in clients]
        await asyncio.to_thread(processing_loop)
        seqs = await asyncio.gather(*readers)
        for ws in clients:
            await ws.close()
        return seqs

    try:
        seqs = asyncio.run(main())
        deadline = time.monotonic() + 5
        while srv.clients > 1 and time.monotonic() < deadline:  # let the fast ones leave
            time.sleep(0.01)
        dropped = [s["dropped"] for s in srv.client_stats()]
    finally:
        stalled.close()
        srv.stop()
    durations.sort()
    p99 = durations[int(0.99 * len(durations))]
    print(f"publish: total {sum(durations) * 1e3:.1f} ms, p99 {p99 * 1e6:.0f} us, "
          f"max {durations[-1] * 1e6:.0f} us; dropped for the stalled client: "
          f"{srv.dropped_messages}")
    # publish() only serialises and queues: it never waits for a client. Its cost is
    # microseconds plus, now and then, a GIL hand-over from the server thread (5 ms interval).
    assert sum(durations) < 1.0, "publish() must not wait for clients"
    assert p99 < 0.010
    assert all(s == list(range(total)) for s in seqs), "a fast client lost or reordered messages"
    assert srv.dropped_messages > 0
    assert dropped == [srv.dropped_messages], "all drops are the stalled client's"


# -- bad client input ------------------------------------------------------------------------------


def test_garbage_binary_and_oversized_frames_are_handled_as_documented(server):
    async def main():
        async with connect(ws_url(server)) as bad, connect(ws_url(server)) as good:
            await recv_json(bad)
            await recv_json(good)
            await bad.send("this is not json {")
            err = await recv_json(bad)
            assert (err["type"], err["code"]) == ("error", "bad_json")
            await bad.send(b"\x00\x01\x02")
            assert (await recv_json(bad))["code"] == "binary_not_supported"
            await bad.send('{"v":1,"type":"launch"}')
            assert (await recv_json(bad))["code"] == "unknown_type"
            await bad.send('{"v":1,"type":"ping","id":"still-there"}')
            pong = await recv_json(bad)
            assert pong["type"] == "pong" and pong["id"] == "still-there"
            # Oversized: the connection is closed with 1009, nobody else is affected.
            await bad.send('{"v":1,"type":"ping","id":"' + "x" * 5000 + '"}')
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(bad.recv(), 5)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            await wait_for(lambda: server.clients == 1)
            server.publish(alert_msg(), "alerts")
            assert (await recv_json(good))["type"] == "alert"

    asyncio.run(main())
    assert server.bad_messages == 3


def test_snooze_is_handed_to_the_daemon_and_acknowledged(server, snoozes):
    async def main():
        async with connect(ws_url(server)) as ws:
            await recv_json(ws)
            await ws.send('{"v":1,"type":"snooze","kind":"noise","minutes":10}')
            ack = await recv_json(ws)
            assert ack["type"] == "snoozed" and ack["kind"] == "noise"
            assert ack["until"] == pytest.approx(time.time() + 600, abs=5)
            await ws.send('{"v":1,"type":"snooze","kind":"noise","minutes":0}')
            assert (await recv_json(ws))["code"] == "bad_message"

    asyncio.run(main())
    assert snoozes == [(Kind.NOISE, 10.0)]


def test_snooze_without_a_handler_is_an_error_reply():
    srv = AlertServer(ServerSettings(port=0), HELLO)
    srv.start()

    async def main():
        async with connect(ws_url(srv)) as ws:
            await recv_json(ws)
            await ws.send('{"v":1,"type":"snooze","kind":"echo","minutes":5}')
            assert (await recv_json(ws))["code"] == "snooze_unavailable"

    try:
        asyncio.run(main())
    finally:
        srv.stop()


# -- state for late joiners, every message type, stop --------------------------------------------


def test_a_client_that_connects_late_gets_the_alerts_still_firing(server):
    firing, other = alert_msg(1), alert_msg(2)
    other["alert"]["id"] = "noise-2"

    async def main():
        server.publish(firing, "alerts")
        server.publish(other, "alerts")
        server.publish(alert_msg(2, state="resolved") | {"alert": {
            **other["alert"], "state": "resolved"}}, "alerts")
        async with connect(ws_url(server)) as ws:
            assert (await recv_json(ws))["type"] == "hello"
            assert await recv_json(ws) == firing
            with pytest.raises(TimeoutError):
                await recv_json(ws, timeout=0.2)

    asyncio.run(main())


def test_every_message_type_the_server_sends_validates(server):
    seen: set[str] = set()

    async def main():
        async with connect(ws_url(server)) as ws:
            seen.add((await recv_json(ws))["type"])
            await ws.send(json.dumps({"v": 1, "type": "subscribe",
                                      "topics": list(protocol.TOPICS)}))
            seen.add((await recv_json(ws))["type"])        # subscribed: levels come now
            for frame in ('{"v":1,"type":"ping"}', "nope",
                          '{"v":1,"type":"snooze","kind":"silence","minutes":1.5}'):
                await ws.send(frame)
                seen.add((await recv_json(ws))["type"])
            now = time.time()
            for msg, topic in (
                (alert_msg(), "alerts"),
                (alert_msg(1, state="resolved"), "alerts"),
                (protocol.levels_message(None, None, at=now), "levels"),
                (protocol.call_started_message("call-1", now), "calls"),
                (protocol.call_ended_message("call-1", now, REPORT), "calls"),
                (protocol.device_message("agent", "lost", "headset_mic", now), "devices"),
            ):
                server.publish(msg, topic)
            for _ in range(6):
                seen.add((await recv_json(ws))["type"])    # recv_json validates each one

    asyncio.run(main())
    assert seen == {"hello", "subscribed", "pong", "error", "snoozed", "alert", "levels",
                    "call_started", "call_ended", "device"}


def test_publish_rejects_caller_bugs_and_is_a_noop_when_stopped():
    srv = AlertServer(ServerSettings(port=0), HELLO)
    srv.publish(alert_msg(), "alerts")                    # not started: dropped silently
    with pytest.raises(ValueError, match="topic"):
        srv.publish(alert_msg(), "gossip")
    with pytest.raises(ValueError):
        srv.publish({"v": 1, "type": "levels", "at": float("nan")}, "levels")


def test_stop_closes_clients_with_going_away(server):
    async def main():
        async with connect(ws_url(server)) as ws:
            await recv_json(ws)
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 5)
            assert info.value.rcvd.code == 1001

    asyncio.run(main())
    assert server.clients == 0
    server.publish(alert_msg(), "alerts")                 # after stop: still harmless


def test_keepalive_closes_a_client_that_stopped_reading():
    srv = AlertServer(ServerSettings(port=0, ping_interval_s=1.0, ping_timeout_s=1.0), HELLO)
    srv.start()
    stalled = StalledClient(srv)
    try:
        t0 = time.monotonic()
        while srv.clients == 0 and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        assert srv.clients == 1
        while srv.clients and time.monotonic() - t0 < 8:
            for i in range(20):                           # enough to fill its buffers
                srv.publish(alert_msg(i), "alerts")
            time.sleep(0.05)
        assert srv.clients == 0, "a client that stopped reading must be closed"
        assert srv.stalled_clients_closed == 1
        print(f"stalled client closed after {time.monotonic() - t0:.1f} s")
    finally:
        stalled.close()
        srv.stop()
