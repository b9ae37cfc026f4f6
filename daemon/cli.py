"""The ``callwatch`` command: one subcommand per module, imported only when chosen.

Each command module exposes ``add_arguments(parser)`` and ``main(args) -> int`` and imports
what it needs at its top; only the chosen module is imported (:func:`build_parser` and
:func:`main`), so ``callwatch --help`` and each command's start-up pay for that command alone.
Errors a command reports share one shape (:mod:`daemon.command`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("daemon.analyze", "analyse recorded calls (WAV/FLAC) and report per call"),
    "run": ("daemon.run", "run the live monitor (headset capture, or --replay a recorded call)"),
    "devices": ("daemon.devices", "list audio input devices (and monitor sources) to configure"),
    "call": ("daemon.call_cli", "start or end a call in the running daemon, or show its status"),
    "install-service": ("daemon.install_service", "install the systemd user unit"),
    "demo": ("daemon.demo", "the main job: monitor the headset, or replay the sample call"),
    "tail": ("daemon.tail", "print the running daemon's live alerts (or --json lines)"),
    "check": ("daemon.check.cli", "validate the headset install: devices, noise, hum, level, echo"),
}
"""Subcommand name -> (module, one-line help)."""

EXIT_USAGE = 2


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callwatch",
        description="Call-quality monitor for contact-centre headsets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
