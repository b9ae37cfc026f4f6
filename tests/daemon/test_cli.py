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
