"""The ``callwatch`` entry point itself, run as the installed console script."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

CALLWATCH = Path(sys.executable).parent / "callwatch"
"""The console script pip installed beside this interpreter: what a user runs."""


def test_version_prints_the_installed_version_and_exits_0():
    out = subprocess.run([str(CALLWATCH), "--version"], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert (out.returncode, out.stdout, out.stderr) == \
        (0, f"callwatch {version('callwatch')}\n", "")
    assert version("callwatch").count(".") == 2  # X.Y.Z, not the "0" of an uninstalled tree


def test_an_unknown_option_is_refused_with_its_commands_usage():
    """argparse hands a subcommand's unknown option up to the top-level parser, whose usage
    lists no option of the command: the command's own usage is the one that helps."""
    for command, usage in (("run", "usage: callwatch run [-h] [--config TOML]"),
                           ("analyze", "usage: callwatch analyze [-h]")):
        out = subprocess.run([str(CALLWATCH), command, "--bogus"], capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 2 and out.stdout == "", out
        assert out.stderr.startswith(usage), out.stderr
        assert out.stderr.endswith(f"callwatch {command}: error: unrecognized arguments: "
                                   "--bogus\n"), out.stderr
