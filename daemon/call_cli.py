"""``callwatch call start|end|status``: the control socket's command-line client
(:mod:`daemon.control`)."""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

from daemon.command import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN,
    CommandError,
    command,
    load_command_config,
)
from daemon.control import socket_path

CLIENT_RETRY_S = 3.0
"""``callwatch call`` retries a refused connection this long while the socket exists (a full
backlog refuses; the daemon is there)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "end", "status"),
                   help="start a call, end it (prints its summary), or show the current one")
    p.add_argument("call_id", nargs="?", help="id for a started call (default: a new uuid)")
    p.add_argument("--config", metavar="TOML", help="config file (for [control] socket_path)")


def _request(path: Path, line: str) -> str:
    """Send one request line, return the reply line. A refused connection (a full backlog) or
    EAGAIN is retried for :data:`CLIENT_RETRY_S` while the socket file exists."""
    deadline = time.monotonic() + CLIENT_RETRY_S
    delay = 0.01
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(10.0)
                s.connect(str(path))
                s.sendall(line.encode() + b"\n")
                return s.makefile("r", encoding="utf-8").readline()
        except (ConnectionRefusedError, BlockingIOError):
            if not path.exists() or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.2)


@command("call")
def main(args: argparse.Namespace) -> int:
    cfg = load_command_config(args.config)
    path = socket_path(cfg.control)
    line = args.action + (f" {args.call_id}" if args.call_id else "")
    try:
        data = _request(path, line)
    except OSError as exc:
        raise CommandError(f"cannot reach the daemon at {path} ({exc.strerror or exc}); "
                           "is `callwatch run` running?", EXIT_CANNOT_RUN) from None
    print(data.strip())
    try:
        ok = json.loads(data).get("ok", False)
    except ValueError:
        ok = False
    return 0 if ok else EXIT_BAD_INPUT
