"""The control socket (daemon.control) on real sockets: requests reach the processing loop and
its reply comes back, bad requests never bother it, one daemon per socket, private paths.
Attacks on the socket's directory and load are in test_hardening_control."""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import threading
from collections.abc import Iterator

import pytest

from daemon.config import ControlSettings
from daemon.control import (
    ControlServer,
    ControlSocketInUse,
    Request,
    send_request,
    socket_path,
)


def test_socket_path_is_the_configured_one_else_in_the_runtime_directory(tmp_path, monkeypatch):
    assert socket_path(ControlSettings(socket_path=str(tmp_path / "c.sock"))) == \
        tmp_path / "c.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert socket_path(ControlSettings()) == tmp_path / "run" / "callwatch" / "control.sock"


@pytest.fixture
def control(tmp_path) -> Iterator[tuple[ControlServer, list[Request]]]:
    """A control server whose requests a loop thread answers like the daemon does."""
    requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
    server = ControlServer(tmp_path / "ctl" / "control.sock", requests)
    seen: list[Request] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                req = requests.get(timeout=0.05)
            except queue.Empty:
                continue
            seen.append(req)
            req.reply.put({"ok": True, "command": req.command, "arg": req.arg})

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    server.start()
    yield server, seen
    server.stop()
    stop.set()
    thread.join()


def ask(server: ControlServer, line: str) -> dict:
    return json.loads(send_request(server.path, line))


def test_requests_reach_the_loop_and_its_reply_comes_back(control):
    server, seen = control
    assert ask(server, "status") == {"ok": True, "command": "status", "arg": None}
    assert ask(server, "START ticket-42 extra") == {"ok": True, "command": "start",
                                                     "arg": "ticket-42"}
    assert [(r.command, r.arg) for r in seen] == [("status", None), ("start", "ticket-42")]
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("line", "error"), [
    ("", "unknown command ''"),
    ("hangup", "unknown command 'hangup'; use start [ID], end or status"),
    ("start bad/id", "call id: 1-64 letters, digits, _ . : -"),
    ("start " + "x" * 65, "call id: 1-64 letters"),
])
def test_bad_requests_are_answered_without_bothering_the_loop(control, line, error):
    server, seen = control
    reply = ask(server, line)
    assert reply["ok"] is False and reply["error"].startswith(error)
    assert seen == []


def test_a_stale_socket_is_replaced_and_a_live_one_is_refused(tmp_path):
    path = tmp_path / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()                                   # a daemon that died: the file stays
    first = ControlServer(path, queue.SimpleQueue())
    first.start()
    try:
        second = ControlServer(path, queue.SimpleQueue())
        with pytest.raises(ControlSocketInUse, match="another callwatch is running"):
            second.start()
        assert path.exists(), "the refused server must not remove the running one's socket"
    finally:
        first.stop()
    assert not path.exists()
    with pytest.raises(OSError):
        send_request(path, "status")


def test_runtime_directory_is_used_as_it_is_and_the_socket_directory_made_private(
        tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    server = ControlServer(socket_path(ControlSettings()), queue.SimpleQueue())
    server.start()
    try:
        assert stat.S_IMODE(os.stat(run / "callwatch").st_mode) == 0o700
        assert stat.S_IMODE(run.stat().st_mode) == 0o755
    finally:
        server.stop()


def test_a_missing_runtime_directory_is_named_with_its_fix(tmp_path, monkeypatch):
    """XDG_RUNTIME_DIR left over from another session (su, a container): one line that names
    it and the fix, not a bare "No such file or directory"."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "gone"))
    server = ControlServer(socket_path(ControlSettings()), queue.SimpleQueue())
    with pytest.raises(OSError, match=r"XDG_RUNTIME_DIR=.*gone: no such directory.*socket_path"):
        server.start()
    assert not (tmp_path / "gone").exists()
