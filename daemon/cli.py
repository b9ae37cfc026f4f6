"""The ``callwatch`` command: one subcommand per module, imported only when chosen.

Each command module exposes ``add_arguments(parser)`` and ``main(args) -> int`` and imports
what it needs at its top; only the chosen module is imported (:func:`build_parser` and
:func:`main`), so ``callwatch --help`` and each command's start-up pay for that command alone.
Errors a command reports share one shape (:mod:`daemon.command`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys

from daemon import package_version

COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("daemon.analyze", "analyse recorded calls (WAV, FLAC, MP3...) and report per call"),
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


class _Version(argparse.Action):
    """``--version``, looked up only when asked: reading the package metadata costs ~40 ms
    of start-up, which every other command would pay for nothing."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(f"callwatch {package_version()}")  # on stdout, as argparse's own action
        parser.exit()


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callwatch",
        description="Call-quality monitor for contact-centre headsets.",
    )
    parser.add_argument("--version", action=_Version, help="print callwatch's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    parser.set_defaults(_commands=sub.choices)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line, an unknown option refused with the usage of the command it was given
    to (argparse's own subcommands hand it up to ``callwatch``'s, which does not list it)."""
    args, extra = build_parser(argv).parse_known_args(argv)
    commands = vars(args).pop("_commands")
    if extra:
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        rc = int(module.main(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not in the flush at exit
        return rc
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our output went away (`callwatch analyze ... | head -1`): stop without
        # a traceback, as the Python docs' note on SIGPIPE advises: the streams that are gone
        # point at /dev/null, so the flush at exit does not fail again. A broken pipe to
        # anything else (a socket) is a real error and goes on.
        if not _quiet_closed_streams():
            raise
        return 1


def _quiet_closed_streams() -> bool:
    """Point stdout and stderr at /dev/null where their reader has gone; whether any had."""
    gone = False
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poll = select.poll()
            poll.register(fd, select.POLLOUT)
            closed = any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
        except (AttributeError, OSError, ValueError):  # not a real file (a test's capture)
            continue
        if closed:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
            gone = True
    return gone


if __name__ == "__main__":
    sys.exit(main())
