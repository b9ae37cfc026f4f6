"""`callwatch tail` as a real subprocess against a real AlertServer."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import time

import pytest

from alerts import protocol
from alerts import tail as tail_module
from alerts.policy import AlertPolicy
from alerts.server import AlertServer, ServerSettings
from alerts.tail import format_message
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase
from tests.ports import free_port


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    srv = AlertServer(ServerSettings(port=0), {"version": "0.1.0", "agent": "ana@ws-17"})
    srv.start()
    yield srv
    srv.stop()


def talk_over_alerts() -> list[dict]:
    policy = AlertPolicy()
    begin = Event(Kind.TALK_OVER, Phase.BEGIN, None, 0, int(0.8 * ANALYSIS_RATE),
                  {"initiator": "agent"})
    end = Event(Kind.TALK_OVER, Phase.END, None, 0, 2 * ANALYSIS_RATE,
                {"initiator": "agent", "duration_s": 2.0})
    alerts = policy.update([begin], now=1000.0) + policy.update([end], now=1001.0)
    alerts += policy.tick(1004.0)
    return [protocol.alert_message(a) for a in alerts]


def tail(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "daemon.cli", "tail", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def publish_when_connected(srv: AlertServer, proc: subprocess.Popen, messages: list[dict]):
    deadline = time.monotonic() + 10
    while srv.clients == 0:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "tail did not connect"
        time.sleep(0.02)
    time.sleep(0.2)  # its subscribe is on the way; alerts are a default topic anyway
    for msg in messages:
        srv.publish(msg, "alerts")
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def test_tail_prints_one_readable_line_per_alert(server):
    proc = tail("--url", server.url, "--count", "2")     # token read from the token file
    rc, out, err = publish_when_connected(server, proc, talk_over_alerts())
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "connected to callwatch 0.1.0 (agent ana@ws-17)"
    assert "FIRING" in lines[1] and "warning" in lines[1] and "talk_over" in lines[1]
    assert "You're talking over the customer" in lines[1] and "initiator=agent" in lines[1]
    assert "RESOLVED" in lines[2] and "duration_s=2.0" in lines[2]


def test_tail_json_prints_each_message_as_received(server):
    msgs = talk_over_alerts()
    proc = tail("--url", server.url, "--token", server.token, "--json", "--count", "2")
    rc, out, err = publish_when_connected(server, proc, msgs)
    assert rc == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    assert [m["type"] for m in got] == ["hello", "subscribed", "alert", "alert"]
    assert got[2:] == msgs


def test_tail_without_a_daemon_exits_3_with_a_clear_message():
    port = free_port()       # nobody listens on it
    proc = tail("--url", f"ws://127.0.0.1:{port}/", "--token", "x" * 32)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 3
    assert "no callwatch daemon is listening" in err and "connection refused" in err


def test_tail_says_so_and_exits_3_when_the_daemon_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    srv = AlertServer(ServerSettings(port=0), {"version": "0.1.0", "agent": "ana@ws-17"})
    srv.start()
    try:
        proc = tail("--url", srv.url, "--token", srv.token)
        deadline = time.monotonic() + 10
        while srv.clients == 0:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.02)
    finally:
        srv.stop()                                      # a daemon that stops: "going away"
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 3, (out, err)
    assert err.startswith("callwatch tail: the daemon closed the connection (code 1001"), err


def test_tail_exits_3_when_the_daemon_stops_before_its_subscribe(server, monkeypatch):
    """The daemon stopping between the handshake and the subscribe is the same end, not a
    traceback: the client here holds its subscribe until the daemon's close has arrived."""
    from websockets.protocol import State

    real_connect = tail_module.connect

    async def connect_then_wait_for_the_close(*args, **kwargs):
        ws = await real_connect(*args, **kwargs)
        await asyncio.to_thread(server.stop)
        while ws.state is not State.CLOSED:
            await asyncio.sleep(0.01)
        return ws

    monkeypatch.setattr(tail_module, "connect", connect_then_wait_for_the_close)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    args = argparse.Namespace(levels=False, json=False, count=0)
    code = asyncio.run(tail_module._tail(server.url, server.token, args, io.StringIO()))
    assert code == 3, err.getvalue()
    assert err.getvalue().startswith("callwatch tail: the daemon closed the connection (code 1001")


def test_tail_with_a_wrong_token_exits_3(server):
    proc = tail("--url", server.url, "--token", "wrong-token-wrong-token")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 3 and "token was refused" in err


def test_tail_with_an_empty_token_says_so_and_exits_2(server):
    """``--token "$TOKEN"`` with the variable unset: not the config's token in its place."""
    proc = tail("--url", server.url, "--token", "", "--page-url")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and out == ""
    assert err.startswith("callwatch tail: --token is empty"), err


def test_tail_page_url_prints_the_nudge_page_address(server):
    proc = tail("--url", server.url, "--page-url")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == server.page_url


def test_format_message_covers_calls_devices_and_levels():
    assert "started call-7" in format_message(protocol.call_started_message("call-7", 0.0))
    line = format_message(protocol.device_message("agent", "lost", "headset_mic", 0.0))
    assert "agent lost: headset_mic" in line
    assert format_message(protocol.levels_message(None, None, 0.0)).strip().endswith("LEVELS")
    assert format_message({"v": 1, "type": "pong", "at": 0.0}) is None


@pytest.fixture
def configured_server(tmp_path, monkeypatch):
    """A server on the port and with the token a config file names, and no token file: tail
    can only find it through the config."""
    port, token = free_port(), "configured-token-0123456789"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    config = tmp_path / "xdg" / "callwatch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[server]\nport = {port}\ntoken = "{token}"\n')
    srv = AlertServer(ServerSettings(port=port, token=token), {"version": "0.1.0",
                                                              "agent": "ana@ws-17"})
    srv.start()
    yield srv, config
    srv.stop()


@pytest.mark.parametrize("explicit", [False, True])
def test_tail_finds_the_daemon_by_the_configs_server_port_and_token(configured_server,
                                                                     explicit):
    srv, config = configured_server
    args = ("--config", str(config)) if explicit else ()  # else the default config path
    proc = tail(*args, "--count", "2")
    rc, out, err = publish_when_connected(srv, proc, talk_over_alerts())
    assert rc == 0, err
    assert out.splitlines()[0] == "connected to callwatch 0.1.0 (agent ana@ws-17)"


def test_tail_page_url_uses_the_configs_port_and_token(configured_server):
    srv, _ = configured_server
    proc = tail("--page-url")
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out.strip() == srv.page_url


def test_tail_with_port_0_in_the_config_asks_for_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 0\n")
    proc = tail("--config", str(config))
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "port = 0" in err and "--url" in err


def test_tail_with_a_broken_config_says_which_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[server]\nport = 99999\n")
    proc = tail("--config", str(config))
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 2 and "[server] port = 99999" in err
