"""The control socket survives running out of file descriptors: a daemon limited to 128 fds
whose alert port holds 400 idle TCP connections fails to accept on the control socket
(EMFILE); it logs that, keeps retrying, and answers again once the connections are gone."""

from __future__ import annotations

import contextlib
import re
import resource
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import DaemonProcess

pytestmark = pytest.mark.integration

LIMIT = 128
"""Descriptors the daemon may hold: the 400 connections take what its own use leaves."""


def test_control_socket_recovers_from_emfile(tmp_path):
    wav = tmp_path / "quiet.wav"
    rng = np.random.default_rng(1)
    sf.write(wav, np.column_stack([rng.normal(0, 0.001, 16000 * 60)] * 2), 16000,
             subtype="PCM_16")
    d = DaemonProcess(tmp_path / "d", "[server]\nport = 0\n",
                      args=("--replay", str(wav), "--no-metrics"), servers=True)
    clients: list[socket.socket] = []
    try:
        started = d.event("started", timeout=20)
        port = int(re.search(r":(\d+)/", started["page"]).group(1))
        assert d.control("status")["ok"]
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
        for _ in range(400):
            with contextlib.suppress(OSError):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        fd_dir = Path(f"/proc/{d.proc.pid}/fd")
        deadline = time.monotonic() + 40  # a loaded 2-core machine accepts slowly
        while len(list(fd_dir.iterdir())) < LIMIT:  # the alert server takes every fd it can
            assert time.monotonic() < deadline, "the daemon never ran out of descriptors"
            time.sleep(0.1)
        with contextlib.suppress(OSError):
            d.control("status", timeout=1.0)  # its accept fails: EMFILE
        failed = d.event("control_accept_error", timeout=10)
        assert failed["errno"] == 24
        for c in clients:
            c.close()
        clients.clear()
        t0 = time.monotonic()
        assert d.control("status", timeout=15)["ok"], "control socket did not recover"
        assert time.monotonic() - t0 < 15
        assert d.proc.poll() is None
    finally:
        for c in clients:
            c.close()
        d.kill()
