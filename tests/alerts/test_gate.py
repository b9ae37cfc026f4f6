"""The alert server's gate (alerts/gate.py) on a real server: who may open a WebSocket (token,
origin, host, client slots), the nudge page and its files, and repeated security headers (a
400, never a 500 with a traceback)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from websockets.asyncio.client import connect

from alerts.server import AlertServer, ServerSettings
from tests.alerts.live_server import HELLO, handshake_status, http_get, recv_json, wait_for, ws_url

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


# -- repeated security headers ---------------------------------------------------------------

TOKEN = "header-test-token-0123456789"


@pytest.fixture
def token_server():
    """A server with a configured token, for requests written by hand."""
    srv = AlertServer(ServerSettings(port=0, token=TOKEN))
    srv.start()
    yield srv
    srv.stop()


def raw_status(port: int, headers: list[str]) -> tuple[int, str]:
    request = "GET /?token=" + TOKEN + " HTTP/1.1\r\n" + "".join(h + "\r\n" for h in headers)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall((request + "\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if not data.startswith(b"HTTP/1.1 101"):  # an error: the body follows, then EOF
            while chunk := s.recv(4096):
                data += chunk
    text = data.decode("latin-1")
    return int(text.split()[1]), text


UPGRADE = ["Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]


@pytest.mark.parametrize("headers", [
    ["Host: 127.0.0.1:{port}", "Host: evil.example:{port}", *UPGRADE],
    ["Host: 127.0.0.1:{port}", "Origin: http://127.0.0.1:{port}", "Origin: http://evil.example",
     *UPGRADE],
    ["Host: 127.0.0.1:{port}", "Host: 127.0.0.1:{port}"],
], ids=["host", "origin", "host-page"])
def test_duplicate_host_or_origin_is_400(token_server, headers, caplog):
    status, text = raw_status(token_server.port,
                              [h.format(port=token_server.port) for h in headers])
    assert status == 400, text
    assert "more than one" in text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_single_headers_still_pass(token_server):
    status, text = raw_status(token_server.port, [f"Host: 127.0.0.1:{token_server.port}", *UPGRADE])
    assert status == 101, text
