"""A real AlertServer on a free loopback port, driven by real `websockets` clients and sockets:
fan-out, topics, slow and stalled clients, bad input, late joiners, stop and keepalive. Who
may connect is in test_gate, the token file in test_token."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from alerts import protocol
from alerts.server import AlertServer, ServerSettings
from dsp.events import Kind
from tests.alerts.live_server import (
    HELLO,
    alert_msg,
    recv_json,
    wait_for,
    ws_url,
)

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


def test_port_in_use_is_a_clear_error():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = AlertServer(ServerSettings(port=port), HELLO)
        with pytest.raises(RuntimeError, match=rf"cannot listen on 127.0.0.1:{port}.*port"):
            srv.start()


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
