"""``callwatch tail`` from the daemon's side: read the config the daemon reads, so that tail
finds the daemon at the config's ``[server]`` port with its token, then hand over to
:mod:`alerts.tail` (which, being in ``alerts``, must not read ``daemon``'s config itself)."""

from __future__ import annotations

import argparse

from alerts import tail
from daemon.command import command, load_command_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="TOML",
                        help="the daemon's config file, for its [server] port and token "
                             "(default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    tail.add_arguments(parser)


@command("tail")
def main(args: argparse.Namespace) -> int:
    return tail.main(args, load_command_config(args.config).server)
