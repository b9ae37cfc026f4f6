"""Running ``callwatch run`` (or ``demo``) as a real subprocess and reading its JSON event log."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

Record = dict[str, Any]


def wall(record: Record) -> float:
    """A log record's ``ts`` as Unix time (the clock of Python's ``time.time()``)."""
    return datetime.fromisoformat(record["ts"].replace("Z", "+00:00")).timestamp()


class DaemonProcess:
    """``callwatch run`` (or ``command``, e.g. ``demo``) with a config written into ``workdir``,
    a JSON log and a private control socket; no alert server or metrics endpoint unless
    ``servers`` (and the config) ask for them."""

    def __init__(self, workdir: Path, config: str, args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, servers: bool = False,
                 command: str = "run") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "config.toml"
        self.socket = workdir / "control.sock"
        self.config.write_text(f'[control]\nsocket_path = "{self.socket}"\n' + config)
        self.log = workdir / "events.jsonl"
        self.stdout = workdir / "stdout.txt"
        self.stderr = workdir / "stderr.txt"
        cmd = [sys.executable, "-m", "daemon.cli", command, "--config", str(self.config),
               "--log-json", str(self.log), *args]
        if not servers:
            cmd += ["--no-server", "--no-metrics"]
        full_env = dict(env if env is not None else os.environ)
        full_env["XDG_CONFIG_HOME"] = str(workdir / "xdg-config")
        # The day's exposure and the crash journal stay in the test's directory, never in
        # the user's (a test may pass its own, to share them between two daemons).
        if env is None or "XDG_STATE_HOME" not in env:
            full_env["XDG_STATE_HOME"] = str(workdir / "xdg-state")
        full_env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env,
                                     stdout=self.stdout.open("w"), stderr=self.stderr.open("w"))
        self._pos = 0
        self.records: list[Record] = []

    def read(self) -> list[Record]:
        if self.log.exists():
            with self.log.open() as f:
                f.seek(self._pos)
                chunk = f.read()
                end = chunk.rfind("\n") + 1
                self._pos += len(chunk[:end].encode())
                for line in chunk[:end].splitlines():
                    self.records.append(json.loads(line))
        return self.records

    def wait_for(self, pred: Callable[[Record], bool], timeout: float = 10.0,
                 after: int = 0, what: str = "") -> Record:
        """The first record (from index ``after``) matching ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            for r in self.read()[after:]:
                if pred(r):
                    return r
            if self.proc.poll() is not None:
                self.read()
                raise AssertionError(f"daemon exited ({self.proc.returncode}) waiting for "
                                     f"{what}: {self.stderr.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what or 'matching record'} within {timeout} s; "
                                     f"log tail: {self.records[-8:]}")
            time.sleep(0.05)

    def event(self, name: str, timeout: float = 10.0, after: int = 0, **match: Any) -> Record:
        return self.wait_for(
            lambda r: r.get("event") == name and all(r.get(k) == v for k, v in match.items()),
            timeout, after, what=f"{name} {match or ''}")

    def page_url(self, timeout: float = 15.0) -> str:
        """The nudge page's URL with its token, once the daemon has logged where it serves it."""
        started = self.event("started", timeout=timeout)
        token = (self.workdir / "xdg-config" / "callwatch" / "token").read_text().strip()
        return f"{started['page']}?token={token}"

    def control(self, line: str, timeout: float = 10.0) -> Record:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(timeout)
                    s.connect(str(self.socket))
                    s.sendall(line.encode() + b"\n")
                    return json.loads(s.makefile().readline())
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> tuple[int, float]:
        """Send ``sig``; (exit code, seconds until exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not exit within {timeout} s of {sig!r}") from None
        self.read()
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
