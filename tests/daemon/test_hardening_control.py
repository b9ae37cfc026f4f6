"""The control socket: a private directory that cannot be hijacked, a backlog that holds a
burst of clients, and a client that retries a full backlog instead of giving up."""

from __future__ import annotations

import argparse
import os
import queue
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from daemon import call_cli, control
from daemon.config import ControlSettings
from daemon.control import ControlServer, Request


@pytest.fixture
def fallback(tmp_path, monkeypatch) -> Path:
    """No XDG_RUNTIME_DIR: the fallback base (normally /tmp/callwatch-<uid>) in tmp_path."""
    base = tmp_path / f"callwatch-{os.getuid()}"
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(control, "_private_base", lambda: base)
    return base


def _answer(requests: queue.SimpleQueue[Request], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            req = requests.get(timeout=0.1)
        except queue.Empty:
            continue
        req.reply.put({"ok": True, "command": req.command})


def test_fallback_path_is_created_private(fallback):
    path = control.socket_path(ControlSettings())
    assert path == fallback / "callwatch" / "control.sock"
    server = ControlServer(path, queue.SimpleQueue())
    server.start()
    try:
        for d in (fallback, fallback / "callwatch"):
            st = os.lstat(d)
            assert st.st_uid == os.getuid() and (st.st_mode & 0o777) == 0o700
        assert os.stat(path).st_mode & 0o077 == 0
    finally:
        server.stop()


@pytest.mark.parametrize("attack", ["open_mode", "other_owner", "symlink", "inner_open"])
def test_a_prepared_fallback_directory_is_refused(fallback, tmp_path, attack):
    if attack == "open_mode":
        fallback.mkdir(mode=0o777)
        os.chmod(fallback, 0o777)
        expect = "lets other users in"
    elif attack == "other_owner":
        if os.getuid() != 0:
            pytest.skip("needs root to create a directory owned by someone else")
        fallback.mkdir(mode=0o700)
        os.chown(fallback, 65534, 65534)
        expect = "belongs to uid 65534"
    elif attack == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        fallback.symlink_to(tmp_path / "elsewhere")
        expect = "not a directory"
    else:
        (fallback / "callwatch").mkdir(parents=True, mode=0o700)
        os.chmod(fallback / "callwatch", 0o755)
        expect = "lets other users in"
    server = ControlServer(control.socket_path(ControlSettings()), queue.SimpleQueue())
    with pytest.raises(OSError, match=expect):
        server.start()
    assert not (fallback / "callwatch" / "control.sock").exists()


def test_300_concurrent_status_calls_all_reach_the_daemon(tmp_path, capsys):
    path = tmp_path / "control.sock"
    requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
    server = ControlServer(path, requests)
    server.start()
    stop = threading.Event()
    responder = threading.Thread(target=_answer, args=(requests, stop))
    responder.start()
    (tmp_path / "c.toml").write_text(f'[control]\nsocket_path = "{path}"\n')
    args = argparse.Namespace(action="status", call_id=None, config=str(tmp_path / "c.toml"))
    try:
        with ThreadPoolExecutor(300) as pool:
            codes = list(pool.map(lambda _: call_cli.main(args), range(300)))
    finally:
        stop.set()
        responder.join()
        server.stop()
    assert codes.count(0) == 300, f"{codes.count(3)} clients were told the daemon is not running"


def test_client_retries_a_refused_connection_while_the_socket_exists(tmp_path):
    path = tmp_path / "control.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # bound, not listening yet: connect() is refused

    def late_daemon() -> None:
        listener.listen(1)
        conn, _ = listener.accept()
        with conn:
            conn.makefile().readline()
            conn.sendall(b'{"ok":true}\n')

    timer = threading.Timer(0.5, late_daemon)
    timer.start()
    try:
        assert control.send_request(path, "status") == '{"ok":true}\n'
    finally:
        timer.join()
        listener.close()


def test_client_gives_up_at_once_without_a_socket(tmp_path):
    with pytest.raises(FileNotFoundError):
        control.send_request(tmp_path / "none.sock", "status")
