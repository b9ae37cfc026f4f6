"""The daemon under soak: ``callwatch run --replay`` with every server on, and how the soak
looks at it from outside (``/proc`` and the control socket)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "soak-token-0123456789abcdef"


def _proc_status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def look(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, open fds, threads) of a process."""
    st = _proc_status(pid)
    return (int(st["VmRSS"].split()[0]) / 1024, len(os.listdir(f"/proc/{pid}/fd")),
            int(st["Threads"]))


def control(sock: Path, line: str, timeout: float = 5.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(sock))
        s.sendall(line.encode() + b"\n")
        return json.loads(s.makefile().readline())


def config_text(work: Path, min_overlap_s: float) -> str:
    """The soak's config: control socket, alert server and metrics on loopback, and the
    talk-over minimum the load's reloads alternate."""
    return (f'[control]\nsocket_path = "{work / "control.sock"}"\n'
            f'[server]\nport = 0\ntoken = "{TOKEN}"\n'
            '[metrics]\nport = 0\n'
            f"[detectors]\nmin_overlap_s = {min_overlap_s}\n")


class Daemon:
    """``callwatch run --replay`` of the calls, with the alert server and metrics on."""

    def __init__(self, work: Path, calls: Path) -> None:
        self.work = work
        self.config = work / "config.toml"
        self.config.write_text(config_text(work, 0.8))
        self.socket = work / "control.sock"
        self.log = work / "events.jsonl"
        self.stderr = work / "stderr.txt"
        env = dict(os.environ, XDG_CONFIG_HOME=str(work / "xdg-config"),
                   XDG_STATE_HOME=str(work / "xdg-state"), PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(self.config),
             "--replay", str(calls), "--speed", "10000", "--log-json", str(self.log),
             "--output", "json"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr.open("w"))
        self.ws_url, self.metrics_url = self._endpoints()

    def _endpoints(self, timeout: float = 30.0) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited: {self.stderr.read_text()[-2000:]}")
            metrics = [line.rsplit(" ", 1)[1] for line in self.stderr.read_text().splitlines()
                       if line.startswith("callwatch: Prometheus metrics:")]
            page = [json.loads(line)["page"] for line in
                    (self.log.read_text().splitlines() if self.log.exists() else [])
                    if '"started"' in line]
            if metrics and page and self.socket.exists():
                return "ws" + page[0].removeprefix("http"), metrics[0]
            time.sleep(0.05)
        raise RuntimeError("the daemon did not start")

    @property
    def running(self) -> bool:
        return self.proc.poll() is None
