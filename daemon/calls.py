"""Calls: when one starts and ends, and its summary.

A call starts either automatically, when the far end has spoken for ``call_start_speech_s``
(a softphone plays nothing to the headset between calls), or explicitly through the control
socket; it ends after ``call_end_silence_s`` of far-end silence (automatic calls only) or
explicitly. Each call gets an id (uuid4 hex); at its end its summary is
:func:`dsp.report.build_report` over the call's stats and events, exactly the fields of
``callwatch analyze``, with event times relative to the call's start.

The control API is a Unix stream socket (mode 0600, in ``$XDG_RUNTIME_DIR``: only this user
can reach it, no port to allocate or firewall): one line in, one JSON line out.

    start [ID]  -> {"ok": true, "call_id": "..."}   (ends a running call first)
    end         -> {"ok": true, "call_id": "...", "summary": {...}}
    status      -> {"ok": true, "call_id": "..."|null, "auto_calls": true, ...}

``callwatch call start|end|status`` is the command-line client.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import queue
import re
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config import CaptureSettings, ConfigError, ControlSettings, load_config, resolve_path
from dsp import ANALYSIS_RATE
from dsp.events import Event
from dsp.report import build_report

START_WINDOW_S = 10.0
"""Far-end speech counts towards a call start if it falls within this many seconds."""

CALL_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass
class Call:
    id: str
    started_s: float
    """Pipeline time (analysis seconds) of the start."""
    start_sample: int
    auto: bool
    wall_start: float
    events: list[Event] = field(default_factory=list)


class CallTracker:
    """Starts and ends calls; the processing loop drives it with pipeline time."""

    def __init__(self, settings: CaptureSettings) -> None:
        self.settings = settings
        self.call: Call | None = None
        self.count = 0
        self._speech: list[tuple[float, float]] = []  # (time, seconds of far-end speech)
        self._last_far_speech = 0.0

    def observe(self, now_s: float, far_speech_s: float, far_speaking: bool) -> str | None:
        """Pipeline time ``now_s`` and the far end's cumulative speech seconds; returns
        "start" or "end" when an automatic call should start or end."""
        if far_speaking:
            self._last_far_speech = now_s
        self._speech.append((now_s, far_speech_s))
        while self._speech and now_s - self._speech[0][0] > START_WINDOW_S:
            self._speech.pop(0)
        if not self.settings.auto_calls:
            return None
        if self.call is None:
            recent = far_speech_s - self._speech[0][1]
            if recent >= self.settings.call_start_speech_s:
                return "start"
        elif self.call.auto and now_s - max(self._last_far_speech, self.call.started_s) \
                >= self.settings.call_end_silence_s:
            return "end"
        return None

    def start(self, now_s: float, sample: int, wall: float, auto: bool,
              call_id: str | None = None) -> Call:
        self.call = Call(call_id or uuid.uuid4().hex, now_s, sample, auto, wall)
        self._last_far_speech = now_s
        self.count += 1
        return self.call

    def add_events(self, events: list[Event]) -> None:
        if self.call is not None:
            self.call.events.extend(events)

    def end(self, stats: Any, closing: list[Event], now_s: float) -> tuple[Call, dict[str, Any]]:
        """Finish the call: its summary in the ``callwatch.analysis/1`` shape."""
        call = self.call
        assert call is not None
        self.call = None
        s0 = call.start_sample
        rel = [dataclasses.replace(e, start=max(0, e.start - s0), end=max(0, e.end - s0))
               for e in (*call.events, *closing)]
        summary = build_report(stats, rel, now_s - call.started_s, ANALYSIS_RATE)
        return call, summary


# -- control socket -------------------------------------------------------------------------


def socket_path(settings: ControlSettings) -> Path:
    if settings.socket_path:
        return Path(settings.socket_path)
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/callwatch-{os.getuid()}"
    return Path(base) / "callwatch" / "control.sock"


@dataclass
class Request:
    command: str
    arg: str | None
    reply: queue.SimpleQueue[dict[str, Any]] = field(default_factory=queue.SimpleQueue)


class ControlServer:
    """Accepts control connections on a thread; requests go to the processing loop, which
    answers them between two blocks of audio (so calls start and end on the audio timeline)."""

    def __init__(self, path: Path, requests: queue.SimpleQueue[Request]) -> None:
        self.path = path
        self.requests = requests
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.path.exists() or self.path.is_symlink():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:
                self.path.unlink()  # stale socket of a daemon that died
            else:
                probe.close()
                raise OSError(f"{self.path}: another callwatch is running (control socket in "
                              "use); stop it or set [control] socket_path")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(str(self.path))
        finally:
            os.umask(old)
        s.listen(8)
        s.settimeout(0.5)
        self._sock = s
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                line = conn.makefile("r", encoding="utf-8", errors="replace").readline(256)
            except OSError:
                return
            parts = line.split()
            cmd = parts[0].lower() if parts else ""
            arg = parts[1] if len(parts) > 1 else None
            if cmd not in ("start", "end", "status"):
                reply: dict[str, Any] = {"ok": False, "error": f"unknown command {cmd!r}; "
                                         "use start [ID], end or status"}
            elif cmd == "start" and arg is not None and not CALL_ID.match(arg):
                reply = {"ok": False, "error": "call id: 1-64 letters, digits, _ . : -"}
            else:
                req = Request(cmd, arg)
                self.requests.put(req)
                try:
                    reply = req.reply.get(timeout=5.0)
                except queue.Empty:
                    reply = {"ok": False, "error": "daemon busy; try again"}
            with contextlib.suppress(OSError):
                conn.sendall((json.dumps(reply, separators=(",", ":")) + "\n").encode())

    def stop(self) -> None:
        s, self._sock = self._sock, None
        if s is not None:
            s.close()
            with contextlib.suppress(OSError):
                self.path.unlink()


# -- `callwatch call` -----------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "end", "status"),
                   help="start a call, end it (prints its summary), or show the current one")
    p.add_argument("call_id", nargs="?", help="id for a started call (default: a new uuid)")
    p.add_argument("--config", metavar="TOML", help="config file (for [control] socket_path)")


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(resolve_path(args.config))
    except ConfigError as exc:
        print(f"callwatch call: {exc}", file=sys.stderr)
        return 2
    path = socket_path(cfg.control)
    line = args.action + (f" {args.call_id}" if args.call_id else "")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10.0)
            s.connect(str(path))
            s.sendall(line.encode() + b"\n")
            data = s.makefile("r", encoding="utf-8").readline()
    except OSError as exc:
        print(f"callwatch call: cannot reach the daemon at {path} ({exc.strerror or exc}); "
              "is `callwatch run` running?", file=sys.stderr)
        return 3
    print(data.strip())
    try:
        ok = json.loads(data).get("ok", False)
    except ValueError:
        ok = False
    return 0 if ok else 2
