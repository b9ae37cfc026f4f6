"""``kill -9`` of a replaying daemon loses at most the last few seconds of the call summary:
the next start reports the interrupted call from the journal (``call_ended``, ``crashed``)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf

from daemon.journal import JOURNAL_EVERY_S
from tests.integration.daemon_run import DaemonProcess
from tests.speech import two_party_call

pytestmark = pytest.mark.integration

HALF = [("customer", "hts2", 0.3), ("agent", "kristoff", 3.0), ("customer", "hts1", 6.0)]


@pytest.fixture
def call_wav(tmp_path):
    turns = HALF + [(p, v, t + 12.0) for p, v, t in HALF]
    agent, customer = two_party_call(turns, 24.0, seed=5)
    path = tmp_path / "call.wav"
    sf.write(path, np.column_stack([agent, customer]), 16000, subtype="PCM_16")
    return path


def test_kill_9_then_restart_reports_the_interrupted_call(tmp_path, call_wav):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    workdir = tmp_path / "d"
    d = DaemonProcess(workdir, "", args=("--replay", str(call_wav), "--speed", "2"), env=env)
    try:
        started = d.event("call_started", timeout=20)
        d.event("talk_over", phase="end", timeout=20)  # the first talk-over, ~7 s in
        while (position := d.control("status")["position_s"]) < 10.0:
            time.sleep(0.05)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(timeout=5)
        d.read()
    finally:
        d.kill()
    assert not [r for r in d.records if r["event"] == "call_ended"]
    journals = list((tmp_path / "state" / "callwatch").glob("calls-*.jsonl"))
    assert len(journals) == 1 and journals[0].stat().st_size > 0
    assert journals[0].stat().st_mode & 0o077 == 0

    mark = len(d.records)
    again = DaemonProcess(workdir, "", args=("--replay", str(call_wav), "--speed", "20"),
                          env=env)
    try:
        crashed = again.event("call_ended", reason="crashed", after=mark, timeout=20)
        assert again.proc.wait(timeout=30) == 0
        again.read()
    finally:
        again.kill()
    assert crashed["call_id"] == started["call_id"]
    summary = crashed["summary"]
    # At most one journal interval (plus a 4 Hz tick and the kill's own latency) is lost.
    assert position - (JOURNAL_EVERY_S + 1.0) <= summary["duration_s"] <= position + 0.5
    assert summary["talk_over"]["count"] >= 1
    # The restarted daemon's own call then ends normally, and its clean stop removes the
    # journal, empty again (nothing left to recover).
    ended = [r for r in again.records[mark:] if r["event"] == "call_ended"]
    assert [r["reason"] for r in ended] == ["crashed", "replay finished"]
    assert not journals[0].exists()
