"""`callwatch run --replay`: a recorded call through the live path gives the same call summary
as `callwatch analyze`; systemd notifications; the control socket and `callwatch call`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import ROOT, DaemonProcess

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "sample-call.wav"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, env=env)


def test_replay_summary_matches_analyze(tmp_path):
    d = DaemonProcess(tmp_path, "", args=("--replay", str(SAMPLE), "--speed", "200"))
    assert d.proc.wait(timeout=60) == 0, d.stderr.read_text()
    d.read()
    live = next(r for r in d.records if r["event"] == "call_ended")["summary"]
    out = cli("analyze", str(SAMPLE), "--json")
    assert out.returncode == 0, out.stderr
    offline = json.loads(out.stdout)
    assert live["talk_over"] == offline["talk_over"]
    assert live["talk_over"]["count"] >= 1
    assert [(e["kind"], e["start_s"], e.get("initiator")) for e in live["events"]
            if e["kind"] == "talk_over"] == \
        [(e["kind"], e["start_s"], e.get("initiator")) for e in offline["events"]
         if e["kind"] == "talk_over"]
    for side in ("agent", "customer"):
        assert abs(live[side]["speech_s"] - offline[side]["speech_s"]) <= 0.1
    assert abs(live["duration_s"] - offline["duration_s"]) < 0.1
    # the readable stdout is JSON lines too when stdout is not a terminal
    lines = d.stdout.read_text().splitlines()
    assert json.loads(lines[0])["event"] == "started"
    assert json.loads(lines[0])["talkover_check"] == "silero"  # installed with the tests


def test_replay_of_an_unfinished_wav_warns_and_plays_it_all(tmp_path):
    """A WAV whose recorder died before writing the sizes (data size 0): analysed whole, and
    said so on stderr and in the event log, as `analyze` does."""
    data = bytearray(SAMPLE.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = bytes(4)
    data[4:8] = bytes(4)
    crashed = tmp_path / "crashed.wav"
    crashed.write_bytes(bytes(data))
    d = DaemonProcess(tmp_path / "d", "", args=("--replay", str(crashed), "--speed", "200"))
    assert d.proc.wait(timeout=60) == 0, d.stderr.read_text()
    warning = [line for line in d.stderr.read_text().splitlines() if "warning" in line]
    assert len(warning) == 1 and str(crashed) in warning[0], warning
    assert "0 bytes of audio" in warning[0]
    d.read()
    logged = [r for r in d.records if r["event"] == "replay_warning"]
    assert len(logged) == 1 and "0 bytes of audio" in logged[0]["warning"]
    summary = next(r for r in d.records if r["event"] == "call_ended")["summary"]
    assert summary["duration_s"] > 30  # the whole 31 s sample, not an empty file


def test_replay_paces_in_real_time(tmp_path):
    t0 = time.monotonic()
    d = DaemonProcess(tmp_path, "", args=("--replay", str(SAMPLE), "--speed", "10"))
    assert d.proc.wait(timeout=60) == 0, d.stderr.read_text()
    took = time.monotonic() - t0
    assert 3.0 <= took < 8.0, took  # 31 s of audio at 10x


@pytest.mark.parametrize("abstract", [False, True])
def test_systemd_notifications(tmp_path, abstract):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@callwatch-test-{os.getpid()}" if abstract else str(tmp_path / "notify.sock")
    sock.bind("\0" + name[1:] if abstract else name)
    sock.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=name, WATCHDOG_USEC="200000")
    d = DaemonProcess(tmp_path, "", args=("--replay", str(SAMPLE), "--speed", "20"), env=env)
    msgs: list[str] = []
    try:
        while not any("STOPPING=1" in m for m in msgs):
            msgs.append(sock.recv(4096).decode())
        assert d.proc.wait(timeout=20) == 0
    finally:
        d.kill()
        sock.close()
    assert msgs[0].startswith("READY=1")
    pings = [m for m in msgs if m.startswith("WATCHDOG=1")]
    assert len(pings) >= 5, msgs  # every 0.1 s while audio flows, for ~1.5 s
    assert "STATUS=" in pings[0] and "agent=replay:sample-call.wav" in pings[0]


def test_call_command_controls_the_daemon(tmp_path):
    d = DaemonProcess(tmp_path, "[capture]\nauto_calls = false\n",
                      args=("--replay", str(SAMPLE), "--speed", "2"))
    cfg = str(d.config)
    try:
        d.event("call_started")  # a replay is one call
        out = cli("call", "end", "--config", cfg)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["summary"]["schema"] == "callwatch.analysis/1"
        out = cli("call", "end", "--config", cfg)
        assert out.returncode == 2 and "no call in progress" in out.stdout
        out = cli("call", "start", "ticket-42", "--config", cfg)
        assert json.loads(out.stdout) == {"ok": True, "call_id": "ticket-42"}
        # starting a call while one runs ends it, and says so with its summary
        out = cli("call", "start", "ticket-43", "--config", cfg)
        reply = json.loads(out.stdout)
        assert reply["call_id"] == "ticket-43" and reply["ended"]["call_id"] == "ticket-42"
        assert reply["ended"]["summary"]["schema"] == "callwatch.analysis/1"
        status = json.loads(cli("call", "status", "--config", cfg).stdout)
        assert status["call_id"] == "ticket-43" and status["calls_total"] == 3
        out = cli("call", "start", "bad/id", "--config", cfg)
        assert out.returncode == 2 and "call id" in out.stdout
        d.terminate()
    finally:
        d.kill()
    ended = [r for r in d.records if r["event"] == "call_ended"]
    assert [r["call_id"] for r in ended][-2:] == ["ticket-42", "ticket-43"]
    assert next(r for r in ended if r["call_id"] == "ticket-42")["reason"] == "new call started"


def test_demo_next_to_a_running_callwatch_takes_its_own_endpoints(tmp_path):
    """`make run` (`callwatch demo`, a replay of the sample call) while another callwatch runs
    with the same config: the demo takes free ports and a control socket of its own, says so,
    and leaves the other daemon, its socket and its call journal alone."""
    import signal

    from tests.ports import free_port

    page_port, metrics_port = free_port(), free_port()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    config = tmp_path / "xdg" / "callwatch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f"[server]\nport = {page_port}\n[metrics]\nport = {metrics_port}\n")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(config.parents[1]),
           "XDG_STATE_HOME": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    env.pop("NOTIFY_SOCKET", None)
    first_log, demo_log = tmp_path / "first.jsonl", tmp_path / "demo.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--replay", str(SAMPLE),
                              "--log-json", str(first_log)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = runtime / "callwatch" / "control.sock"
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert first.poll() is None and time.monotonic() < deadline, "first did not start"
            time.sleep(0.05)
        demo = subprocess.Popen([sys.executable, "-m", "daemon.cli", "demo", "--speed", "100",
                                 "--log-json", str(demo_log)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while "replay_finished" not in (demo_log.read_text() if demo_log.exists() else ""):
            assert demo.poll() is None, demo.communicate()[1]
            assert time.monotonic() < deadline, "the demo did not finish its replay"
            time.sleep(0.1)
        demo.send_signal(signal.SIGINT)
        _, err = demo.communicate(timeout=10)
        assert demo.returncode == 0, err
        takes = [line for line in err.splitlines() if "this replay takes" in line]
        assert len(takes) == 3, err
        assert f"[server] port {page_port} is in use" in takes[0]
        assert f"[metrics] port {metrics_port} is in use" in takes[1]
        assert f"another callwatch answers on {sock}" in takes[2]
        records = [json.loads(line) for line in demo_log.read_text().splitlines()]
        started = next(r for r in records if r["event"] == "started")
        assert f":{page_port}/" not in started["page"]
        # `callwatch tail` would find the first daemon on the configured socket: the demo
        # names its own URL for it.
        own_url = "ws" + started["page"].removeprefix("http")
        hint = next(line for line in err.splitlines() if "agent nudge page" in line)
        assert f"(with its token: callwatch tail --page-url --url {own_url})" in hint, hint
        assert not any(r.get("reason") == "crashed" for r in records)
        assert sorted(p.name for p in sock.parent.iterdir()) == ["control.sock"]

        status = json.loads(cli("call", "status", env=env).stdout)  # still the first daemon
        assert status["ok"] and status["call_id"] is not None
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.parametrize("configured", ["in use", "0"])
def test_tail_page_url_names_the_port_the_daemon_really_serves(tmp_path, configured):
    """The configured nudge-page port held by another program (a replay then serves on a free
    port) or 0 (picked at start): `callwatch tail --page-url` prints the page the running
    daemon serves, not the configured port."""
    import urllib.request

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1] if configured == "in use" else 0
        d = DaemonProcess(tmp_path, f"[server]\nport = {port}\n[metrics]\nenabled = false\n",
                          args=("--replay", str(SAMPLE)), servers=True)
        try:
            served = d.event("started", timeout=20)["page"]
            env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
            out = cli("tail", "--page-url", "--config", str(d.config), env=env)
            token = (tmp_path / "xdg-config" / "callwatch" / "token").read_text().strip()
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == f"{served}?token={token}"
            assert not served.endswith(f":{port}/")
            with urllib.request.urlopen(out.stdout.strip(), timeout=10) as page:
                assert page.status == 200
        finally:
            d.kill()


def test_call_command_without_a_daemon(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[control]\nsocket_path = "{tmp_path / "none.sock"}"\n')
    out = cli("call", "status", "--config", str(cfg))
    assert out.returncode == 3 and "is `callwatch run` running?" in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("--replay", "/nonexistent.wav"), "--replay /nonexistent.wav: no such file"),
    (("--replay", str(SAMPLE), "--speed", "0"), "--speed 0.0: must be between"),
])
def test_bad_run_arguments_exit_2(args, message):
    out = cli("run", *args, "--no-server", "--no-metrics")
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_a_mono_replay_is_told_what_run_takes(tmp_path):
    """`run --replay` takes one stereo file and nothing else: the fix must not name
    `--agent/--customer`, which only `callwatch analyze` has."""
    mono = tmp_path / "agent-only.wav"
    sf.write(mono, np.zeros(16000 * 2, dtype=np.float32), 16000)
    out = cli("run", "--replay", str(mono), "--no-server", "--no-metrics")
    assert out.returncode == 2
    assert out.stderr == (
        f"callwatch run: {mono}: mono file, but a stereo call (agent and customer) is needed; "
        "--replay takes one stereo file, the agent on channel 0 and the customer on channel "
        "1: put the two sides into one, e.g. sox -M AGENT.wav CUSTOMER.wav CALL.wav\n")


def test_demo_names_itself_in_a_bad_speed_before_announcing_a_replay(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_STATE_HOME": str(tmp_path / "state")}
    out = cli("demo", "--speed", "0", env=env)
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == "callwatch demo: --speed 0.0: must be between 0.01 and 10000\n"


def test_demo_text_alerts_show_clock_times(tmp_path):
    """`callwatch demo --output text` (what a terminal gets): its alerts read as the nudges
    the agent saw, their times as HH:MM:SS, not as Unix seconds; detections as where in the
    call they began and ended (the replay is one call), as its summary counts."""
    import re
    import signal

    config = tmp_path / "config" / "callwatch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[server]\nport = 0\n[metrics]\nenabled = false\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_RUNTIME_DIR": str(tmp_path / "run"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "PYTHONUNBUFFERED": "1"}
    (tmp_path / "run").mkdir(mode=0o700)
    demo = subprocess.Popen([sys.executable, "-m", "daemon.cli", "demo", "--speed", "50",
                             "--output", "text"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in demo.stderr:
            if "the replay is over" in line:
                break
        demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=10)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    shown = [line for line in out.splitlines() if " nudge shown " in line]
    assert len(shown) >= 2, out
    for line in shown:
        assert re.search(r" (info|warning|critical): .+ \(after \d+\.\d s\)$", line), line
    assert " nudge resolved " in out, out
    assert re.search(r" talk_over +ended \d+\.\d\d-\d+\.\d\d s into the call "
                     r"\(\d+\.\d\d s\): initiator=(agent|customer)$", out, re.M), out
    nudges = [line for line in out.splitlines() if " nudge " in line]
    assert not any(re.search(r"\d{10}", line) for line in nudges), nudges


def test_install_service_refuses_a_config_the_private_tmp_hides(tmp_path):
    cfg = tmp_path / "callwatch.toml"  # under /tmp: PrivateTmp=yes hides it from the service
    cfg.write_text("")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "home"))
    out = cli("install-service", "--config", str(cfg), env=env)
    assert out.returncode == 3 and "private /tmp" in out.stderr, out.stderr
    assert not (tmp_path / "home" / "systemd" / "user" / "callwatch.service").exists()


def test_install_service_writes_the_user_unit(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "XDG_STATE_HOME")}
    env["HOME"] = str(tmp_path)
    out = cli("install-service", env=env)
    assert out.returncode == 0, out.stderr
    unit_path = tmp_path / ".config" / "systemd" / "user" / "callwatch.service"
    unit = unit_path.read_text()
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_line.endswith("/callwatch run $CALLWATCH_ARGS")
    assert Path(exec_line[10:-len(" run $CALLWATCH_ARGS")]).exists()
    assert "Type=notify" in unit and "WatchdogSec=30" in unit
    # Every directory the daemon writes under the read-only home is made and writable.
    assert "ExecStartPre=+/bin/mkdir -p -m 0700 %h/.config/callwatch %h/.local/state/callwatch" \
        in unit
    assert "ReadWritePaths=-%h/.config/callwatch -%h/.local/state/callwatch -%t" in unit
    assert not any(line.startswith("Nice=") for line in unit.splitlines())
    assert "systemctl --user daemon-reload && systemctl --user enable --now callwatch" \
        in out.stdout
    shipped = (ROOT / "systemd" / "callwatch.service").read_text()
    from daemon.install_service import REPO_EXEC, render
    assert shipped == render(REPO_EXEC)
    verify = subprocess.run(["which", "systemd-analyze"], capture_output=True)
    if verify.returncode == 0:
        runtime = tmp_path / "run"
        runtime.mkdir(mode=0o700)
        res = subprocess.run(["systemd-analyze", "verify", "--user", str(unit_path)],
                             capture_output=True, text=True,
                             env=dict(env, XDG_RUNTIME_DIR=str(runtime)))
        assert res.returncode == 0, res.stderr
