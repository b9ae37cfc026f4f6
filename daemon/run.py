"""``callwatch run``: the live daemon (capture or replay -> pipeline -> calls, alerts, metrics)."""

from __future__ import annotations

import argparse
import sys

from daemon.config import ConfigError, load_config, resolve_path

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_CANNOT_RUN = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML",
                   help="config file (default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--check-config", action="store_true",
                   help="validate the config file and exit (0 valid, 2 invalid)")


def main(args: argparse.Namespace) -> int:
    path = resolve_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"callwatch run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check_config:
        print(f"{cfg.path}: OK")
        return EXIT_OK
    return EXIT_CANNOT_RUN
