"""What a running daemon writes down: the WebSocket token never reaches the event log (file
or journal), and the ``--log-json`` file is private (0600)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import DaemonProcess

pytestmark = pytest.mark.integration

TOKEN = "hardening-token-0123456789abcdef"


@pytest.fixture
def quiet_wav(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros((16000 * 2, 2)), 16000, subtype="PCM_16")
    return path


def test_token_stays_out_of_logs_and_the_log_file_is_private(tmp_path, quiet_wav):
    old = os.umask(0o022)  # the usual umask, under which open(..., "a") made the file 0644
    try:
        d = DaemonProcess(tmp_path / "d", f'[server]\nport = 0\ntoken = "{TOKEN}"\n',
                          args=("--replay", str(quiet_wav), "--no-metrics"), servers=True)
    finally:
        os.umask(old)
    try:
        started = d.event("started", timeout=20)
        assert d.proc.wait(timeout=30) == 0
    finally:
        d.kill()
    assert started["page"].startswith("http://127.0.0.1:") and started["page"].endswith("/")
    assert stat.S_IMODE(d.log.stat().st_mode) == 0o600
    for f in (d.log, d.stdout, d.stderr):  # JSON file, journal (stdout), console (not a tty)
        assert TOKEN not in f.read_text(), f"token written to {f.name}"
    assert "callwatch tail --page-url" in d.stderr.read_text()


def test_an_existing_world_readable_log_is_narrowed(tmp_path, quiet_wav):
    log = tmp_path / "d" / "events.jsonl"
    log.parent.mkdir()
    log.write_text("")
    os.chmod(log, 0o644)
    d = DaemonProcess(tmp_path / "d", "", args=("--replay", str(quiet_wav)))
    try:
        assert d.proc.wait(timeout=30) == 0
    finally:
        d.kill()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert '"event":"stopped"' in log.read_text()
