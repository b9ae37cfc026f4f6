"""``callwatch call start|end|status``: the control socket's command-line client
(:mod:`daemon.control`)."""

from __future__ import annotations

import argparse
import json

from daemon.command import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN,
    CommandError,
    command,
    load_command_config,
)
from daemon.control import send_request, socket_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("start", "end", "status"),
                   help="start a call, end it (prints its summary), or show the current one")
    p.add_argument("call_id", nargs="?", help="id for a started call (default: a new uuid)")
    p.add_argument("--config", metavar="TOML", help="config file (for [control] socket_path)")


@command("call")
def main(args: argparse.Namespace) -> int:
    cfg = load_command_config(args.config)
    path = socket_path(cfg.control)
    line = args.action + (f" {args.call_id}" if args.call_id else "")
    try:
        data = send_request(path, line)
    except OSError as exc:
        raise CommandError(f"cannot reach the daemon at {path} ({exc.strerror or exc}); "
                           "is `callwatch run` running?", EXIT_CANNOT_RUN) from None
    print(data.strip())
    try:
        ok = json.loads(data).get("ok", False)
    except ValueError:
        ok = False
    return 0 if ok else EXIT_BAD_INPUT
