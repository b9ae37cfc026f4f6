"""The daemon's endpoints: a replay borrows a free port or socket when the configured one is
taken, and says what it took; a live daemon refuses."""

from __future__ import annotations

import errno
import queue
import socket

import pytest

from alerts.server_settings import ServerSettings
from daemon.config import ControlSettings
from daemon.control import ControlSocketInUse
from daemon.endpoints import (
    port_taken,
    start_alert_server,
    start_control,
    start_metrics,
    stop_metrics,
)
from daemon.logjson import EventLog
from daemon.metrics import MetricsSettings, PublishedStats
from daemon.state import DaemonState


def _listening() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def test_port_taken_reads_the_cause():
    def raised(cause: BaseException | None) -> RuntimeError:
        exc = RuntimeError("cannot listen")
        exc.__cause__ = cause
        return exc

    assert port_taken(raised(OSError(errno.EADDRINUSE, "in use")))
    assert not port_taken(raised(OSError(errno.EACCES, "denied")))
    assert not port_taken(raised(None))


def test_a_replay_borrows_the_nudge_page_port_and_a_live_daemon_refuses():
    held = _listening()
    port = held.getsockname()[1]
    settings = ServerSettings(port=port, token="t" * 32)
    try:
        with pytest.raises(RuntimeError) as refused:
            start_alert_server(settings, {}, lambda kind, minutes: None, borrow=False)
        assert port_taken(refused.value)
        server, note = start_alert_server(settings, {}, lambda kind, minutes: None, borrow=True)
        try:
            assert server.port not in (0, port)
            assert note == (f"the nudge page on port {server.port} ([server] port {port} is "
                            "in use)")
        finally:
            server.stop(timeout_s=1.0)
    finally:
        held.close()


def test_metrics_borrow_a_port_and_can_be_left_without_an_endpoint():
    held = _listening()
    port = held.getsockname()[1]
    try:
        metrics, note = start_metrics(MetricsSettings(port=port), DaemonState(agent_id="a"),
                                      PublishedStats(), lambda: None, borrow=True)
        try:
            assert metrics.http is not None and metrics.http.port != port
            assert note == (f"metrics on port {metrics.http.port} ([metrics] port {port} is "
                            "in use)")
        finally:
            stop_metrics(metrics)
        with pytest.raises(OSError):
            start_metrics(MetricsSettings(port=port), DaemonState(agent_id="a"),
                          PublishedStats(), lambda: None, borrow=False)
    finally:
        held.close()
    off, note = start_metrics(MetricsSettings(enabled=False), DaemonState(agent_id="a"),
                              PublishedStats(), lambda: None, borrow=False)
    assert off.http is None and note is None
    stop_metrics(off)  # nothing to stop


def test_a_replay_takes_a_control_socket_of_its_own_beside_a_running_daemon(tmp_path):
    path = tmp_path / "control.sock"
    settings = ControlSettings(socket_path=str(path))
    log = EventLog([])
    first, note = start_control(settings, queue.SimpleQueue(), log, borrow=False)
    try:
        assert note is None and first.path == path
        with pytest.raises(ControlSocketInUse):
            start_control(settings, queue.SimpleQueue(), log, borrow=False)
        own, note = start_control(settings, queue.SimpleQueue(), log, borrow=True)
        try:
            assert own.path != path and own.path.parent == path.parent
            assert note == f"the control socket {own.path} (another callwatch answers on {path})"
        finally:
            own.stop()
    finally:
        first.stop()
