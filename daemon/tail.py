"""``callwatch tail`` from the daemon's side: find where the running daemon really serves its
nudge page, then hand over to :mod:`alerts.tail` (which, being in ``alerts``, must not read
``daemon``'s config or talk to its control socket itself).

The config's ``[server]`` port is only what the daemon asked for: a replay whose port was
taken serves on another one, and port 0 is picked at start. So, without ``--url``, tail asks
the daemon on the config's control socket (``status``, its ``endpoints``) and uses the
configured host and port only when no daemon answers there.
"""

from __future__ import annotations

import argparse
import json

from alerts import tail
from daemon.command import command, load_command_config
from daemon.config import ControlSettings
from daemon.control import send_request, socket_path

STATUS_RETRY_S = 0.5
"""How long a refused control connection is retried: tail falls back on the config at once
when the socket is stale (a daemon killed hard leaves it behind)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="TOML",
                        help="the daemon's config file, for its control socket, [server] port "
                             "and token (default: $XDG_CONFIG_HOME/callwatch/config.toml if "
                             "present)")
    tail.add_arguments(parser)


def running_url(control: ControlSettings) -> str | None:
    """The WebSocket URL the daemon on ``control``'s socket serves, or ``None`` when no daemon
    answers there or it serves none (``--no-server``)."""
    try:
        reply = json.loads(send_request(socket_path(control), "status", STATUS_RETRY_S))
    except (OSError, ValueError):
        return None
    endpoints = reply.get("endpoints") if isinstance(reply, dict) else None
    url = endpoints.get("websocket") if isinstance(endpoints, dict) else None
    return url if isinstance(url, str) else None


@command("tail")
def main(args: argparse.Namespace) -> int:
    cfg = load_command_config(args.config)
    if args.url is None:
        args.url = running_url(cfg.control)
    return tail.main(args, cfg.server)
