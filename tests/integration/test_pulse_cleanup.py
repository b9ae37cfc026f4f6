"""The virtual headset's PulseAudio lives in a ``cw-pulse-*`` temporary directory: a process
that used it must leave neither the server nor the directory behind when it exits."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.daemon_run import ROOT

pytestmark = pytest.mark.integration

USE_AND_EXIT = """
from tests.integration.pulse import headset
s = headset()
assert s.pactl("info", check=False).returncode == 0
print(s.dir, s.pid, flush=True)
"""


def test_a_test_process_leaves_no_server_and_no_directory():
    out = subprocess.run([sys.executable, "-c", USE_AND_EXIT], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    directory, pid = out.stdout.split()
    assert os.path.basename(directory).startswith("cw-pulse-")
    assert not os.path.exists(directory)
    assert _state(int(pid)) in (None, "Z"), "the PulseAudio server still runs"


def _state(pid: int) -> str | None:
    """A process's state letter, or None if it is gone. The daemonised server is reparented
    to whatever reaps orphans here; until it does, a dead one is a zombie ("Z")."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
