"""ALSA's own messages go to callwatch's log, not to stderr (daemon/portaudio.py).

Each case runs in a fresh interpreter, so the handler of one does not leak into another, and
provokes a real ALSA message: opening a PCM that does not exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROVOKE = """
import ctypes, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
{setup}
alsa = ctypes.CDLL("libasound.so.2")
pcm = ctypes.c_void_p()
assert alsa.snd_pcm_open(ctypes.byref(pcm), b"callwatch_no_such_pcm", 0, 0) < 0
"""


def _run(setup: str) -> subprocess.CompletedProcess[str]:
    try:
        import ctypes

        ctypes.CDLL("libasound.so.2")
    except OSError:
        pytest.fail("needs Debian's libasound2 (installed with libportaudio2 by make test)")
    return subprocess.run([sys.executable, "-c", PROVOKE.format(setup=setup)],
                          capture_output=True, text=True, timeout=60, check=True, cwd=ROOT)


def test_without_the_handler_alsa_writes_to_stderr():
    """The provocation is real: left alone, ALSA prints its line on stderr."""
    r = _run("")
    assert "ALSA lib" in r.stderr and "callwatch_no_such_pcm" in r.stderr, r.stderr


def test_alsa_messages_are_logged_at_debug_not_printed():
    r = _run("from daemon.portaudio import quiet_alsa\nassert quiet_alsa() and quiet_alsa()")
    assert r.stderr == "", r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("callwatch.alsa "))
    assert "Unknown PCM" in line and "snd_pcm_open" in line, r.stdout


def test_load_sounddevice_quiets_alsa_before_portaudio_starts():
    r = _run("from daemon.portaudio import load_sounddevice\n"
             "sd = load_sounddevice()\nsd.query_devices()")
    assert "ALSA lib" not in r.stderr, r.stderr
