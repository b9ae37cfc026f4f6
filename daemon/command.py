"""How a ``callwatch`` subcommand reports input it cannot use: one line, an exit code.

Every subcommand opens the same way (load the config; if it is bad, print
``callwatch NAME: file, key and fix`` on stderr and exit 2) and refuses bad arguments the same
way. :func:`command` does that once: a subcommand's ``main`` raises :class:`CommandError` (or
lets the config's :class:`~daemon.config.ConfigError` through) and the decorator prints it
under the command's name and returns its exit code, so ``main(args) -> int`` keeps its
contract for callers and tests::

    @command("call")
    def main(args: argparse.Namespace) -> int:
        cfg = load_command_config(args.config)
        if args.timeout_s <= 0:
            raise CommandError(f"--timeout-s {args.timeout_s}: must be above 0")
        ...
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from daemon.config import Config, ConfigError, load_config, resolve_path

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CANNOT_RUN",
    "CommandError",
    "command",
    "load_command_config",
]

EXIT_BAD_INPUT = 2
"""Bad config, arguments or input files: the message says what to fix."""
EXIT_CANNOT_RUN = 3
"""The input is fine but the command cannot do its job here (no daemon, no device, no disk)."""

Main = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """What a subcommand cannot go on with: ``message`` names the problem and the fix."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def command(name: str) -> Callable[[Main], Main]:
    """Decorate the ``main`` of ``callwatch NAME``: a :class:`CommandError` or
    :class:`ConfigError` it raises becomes ``callwatch NAME: message`` on stderr and the
    error's exit code (2 for a bad config)."""

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(args: argparse.Namespace) -> int:
            try:
                return main(args)
            except CommandError as exc:
                print(f"callwatch {name}: {exc}", file=sys.stderr)
                return exc.exit_code
            except ConfigError as exc:
                for problem in exc.problems:
                    print(f"callwatch {name}: {problem}", file=sys.stderr)
                return EXIT_BAD_INPUT

        return run

    return wrap


def load_command_config(path: str | None) -> Config:
    """The config a subcommand runs with: ``--config PATH``, else the default file if there
    is one, else the defaults. Raises :class:`ConfigError` naming the file, key and fix."""
    return load_config(resolve_path(path))
