"""Repeated security headers on the alert port are a 400, never a 500 with a traceback."""

from __future__ import annotations

import socket

import pytest

from alerts.server import AlertServer, ServerSettings

TOKEN = "header-test-token-0123456789"


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
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
def test_duplicate_host_or_origin_is_400(server, headers, caplog):
    status, text = raw_status(server.port, [h.format(port=server.port) for h in headers])
    assert status == 400, text
    assert "more than one" in text
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_single_headers_still_pass(server):
    status, text = raw_status(server.port, [f"Host: 127.0.0.1:{server.port}", *UPGRADE])
    assert status == 101, text
