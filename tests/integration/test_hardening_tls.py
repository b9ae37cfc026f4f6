"""Failed TLS connections to the metrics port cost one short line per 10 s, not a traceback
each: 200 plain-HTTP probes of a running daemon's HTTPS endpoint."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import DaemonProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def cert(tmp_path):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True)
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_200_failed_tls_connections_write_one_short_line(tmp_path, cert):
    wav = tmp_path / "quiet.wav"
    sf.write(wav, np.zeros((16000 * 60, 2)), 16000, subtype="PCM_16")
    config = (f'[metrics]\nport = 0\ntls_cert_file = "{cert[0]}"\n'
              f'tls_key_file = "{cert[1]}"\n')
    d = DaemonProcess(tmp_path / "d", config, args=("--replay", str(wav), "--no-server"),
                      servers=True)
    try:
        d.event("started", timeout=20)
        deadline = time.monotonic() + 10
        while not (m := re.search(r"https://127\.0\.0\.1:(\d+)/metrics", d.stderr.read_text())):
            assert time.monotonic() < deadline, d.stderr.read_text()
            time.sleep(0.05)
        port = int(m.group(1))
        before = len(d.stderr.read_text().splitlines())
        for _ in range(200):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                with contextlib.suppress(OSError):
                    s.recv(100)
        time.sleep(1.0)
        assert d.proc.poll() is None
        lines = d.stderr.read_text().splitlines()[before:]
    finally:
        d.kill()
    assert 1 <= len(lines) <= 2, lines[:30]
    assert all(len(line) <= 300 and "Traceback" not in line for line in lines)
    assert "callwatch: metrics: connection from 127.0.0.1 failed" in lines[0]
