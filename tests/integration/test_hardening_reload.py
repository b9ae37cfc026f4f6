"""A reload that cannot be used never stops the daemon: a NaN threshold or a TOML file nested
thousands deep on SIGHUP gives ``config_reload_failed``, the old settings stay, and the call
still ends with its summary."""

from __future__ import annotations

import signal

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import DaemonProcess
from tests.speech import two_party_call

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory):
    turns = [("customer", "hts2", 0.3), ("agent", "kristoff", 3.0), ("customer", "hts1", 6.0)]
    agent, customer = two_party_call(turns, 12.0, seed=5)
    path = tmp_path_factory.mktemp("reload") / "call.wav"
    sf.write(path, np.column_stack([agent, customer]), 16000, subtype="PCM_16")
    return path


@pytest.mark.parametrize(("bad", "error"), [
    ("[detectors]\nmin_overlap_s = nan\n", "min_overlap_s = nan: must be a finite number"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_unusable_config_on_sighup_keeps_the_daemon_and_the_summary(tmp_path, call_wav, bad,
                                                                     error):
    d = DaemonProcess(tmp_path, "", args=("--replay", str(call_wav), "--speed", "2"))
    try:
        d.event("call_started")
        d.config.write_text(d.config.read_text() + bad)
        d.proc.send_signal(signal.SIGHUP)
        failed = d.event("config_reload_failed")
        assert error in failed["error"]
        assert d.proc.wait(timeout=30) == 0
        d.read()
    finally:
        d.kill()
    ended = next(r for r in d.records if r["event"] == "call_ended")
    assert abs(ended["summary"]["duration_s"] - 12.0) < 0.5
    assert d.records[-1]["event"] == "stopped"
