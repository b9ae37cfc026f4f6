"""Signals on a running daemon (live replay, no sound server needed): SIGHUP applies new
thresholds without dropping audio; SIGTERM/SIGINT end the call with its summary and exit 0
within 2 s."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import DaemonProcess
from tests.ports import free_port
from tests.speech import two_party_call

pytestmark = pytest.mark.integration

HALF = [("customer", "hts2", 0.3), ("agent", "kristoff", 3.0), ("customer", "hts1", 6.0)]
CALL_S = 24.0
"""The same exchange twice: a talk-over from ~4.1 s and one from ~16.1 s (the customer's next
phrase, ~0.2 s after their first ends, belongs to the same episode)."""


@pytest.fixture(scope="module")
def call_wav(tmp_path_factory):
    turns = HALF + [(p, v, t + 12.0) for p, v, t in HALF]
    agent, customer = two_party_call(turns, CALL_S, seed=5)
    path = tmp_path_factory.mktemp("sig") / "call.wav"
    sf.write(path, np.column_stack([agent, customer]), 16000, subtype="PCM_16")
    return path


def test_sighup_reloads_thresholds_without_dropping_audio(tmp_path, call_wav):
    strict = "[detectors]\nmin_overlap_s = 5.0\n"
    d = DaemonProcess(tmp_path, strict, args=("--replay", str(call_wav), "--speed", "4"))
    try:
        d.event("started")
        while d.control("status")["position_s"] < 8.5:  # first exchange over, none reported
            time.sleep(0.02)
        assert d.control("status")["position_s"] < 14.5, "replay ran past the reload window"
        text = d.config.read_text().replace("min_overlap_s = 5.0", "min_overlap_s = 0.8")
        d.config.write_text(text)
        mark = len(d.read())
        d.proc.send_signal(signal.SIGHUP)
        reloaded = d.event("config_reloaded", after=mark)
        assert reloaded["changed"] == {"detectors.min_overlap_s": [5.0, 0.8]}
        assert d.proc.wait(timeout=20) == 0
        d.read()
    finally:
        d.kill()
    talk = [r for r in d.records if r["event"] == "talk_over" and r["phase"] == "end"]
    assert [(round(r["start_s"]), r["initiator"]) for r in talk] == [(16, "agent")]
    stopped = d.records[-1]
    assert stopped["event"] == "stopped"
    assert abs(stopped["processed_s"] - CALL_S) < 0.1  # no audio dropped by the reload
    summary = next(r for r in d.records if r["event"] == "call_ended")["summary"]
    assert summary["talk_over"]["count"] == 1


def test_sighup_names_what_waits_for_a_restart_and_keeps_it_running(tmp_path, call_wav):
    """A reload that changes the nudge page's port and the agent id: both are named as
    needing a restart (in `needs_restart` and a readable `warning`), the daemon keeps serving
    on the port it has, and the thresholds in the same file apply at once."""
    port, other = free_port(), free_port()
    d = DaemonProcess(tmp_path, f'[agent]\nid = "ana"\n[server]\nport = {port}\n'
                      "[metrics]\nenabled = false\n",
                      args=("--replay", str(call_wav), "--speed", "2"), servers=True)
    try:
        d.event("started")
        text = d.config.read_text().replace(f"port = {port}", f"port = {other}")
        d.config.write_text(text.replace('id = "ana"', 'id = "bob"')
                            + "[detectors]\nmin_overlap_s = 1.0\n")
        mark = len(d.read())
        d.proc.send_signal(signal.SIGHUP)
        reloaded = d.event("config_reloaded", after=mark)
        assert reloaded["needs_restart"] == ["agent.id", "server.port"]
        assert reloaded["changed"]["server.port"] == [port, other]
        assert reloaded["changed"]["detectors.min_overlap_s"] == [0.8, 1.0]
        assert reloaded["warning"].startswith("[agent] id, [server] port: changed, but the "
                                              "running daemon keeps the old value")
        assert d.control("status")["endpoints"]["websocket"] == f"ws://127.0.0.1:{port}/"
        rc, _ = d.terminate(signal.SIGTERM)
        assert rc == 0
    finally:
        d.kill()


def test_bad_config_on_sighup_keeps_the_old_one(tmp_path, call_wav):
    d = DaemonProcess(tmp_path, "", args=("--replay", str(call_wav), "--speed", "2"))
    try:
        d.event("started")
        d.config.write_text(d.config.read_text() + "[detectors]\nmin_overlap_s = -1\n")
        d.proc.send_signal(signal.SIGHUP)
        failed = d.event("config_reload_failed")
        assert "[detectors] min_overlap_s = -1: must be between 0.1 and 5.0" in failed["error"]
        assert (failed["file"], failed["settings"]) == (str(d.config), "unchanged"), failed
        assert d.proc.poll() is None
        rc, took = d.terminate(signal.SIGTERM)
        assert rc == 0 and took < 2.0
    finally:
        d.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_ends_the_call_with_its_summary(tmp_path, call_wav, sig):
    d = DaemonProcess(tmp_path, "", args=("--replay", str(call_wav), "--speed", "4"))
    try:
        started = d.event("call_started")
        d.event("talk_over", phase="end", timeout=10)
        rc, took = d.terminate(sig)
    finally:
        d.kill()
    assert rc == 0 and took < 2.0, (rc, took)
    ended = next(r for r in d.records if r["event"] == "call_ended")
    assert ended["call_id"] == started["call_id"] and ended["reason"] == sig.name
    assert ended["summary"]["schema"] == "callwatch.analysis/1"
    assert ended["summary"]["talk_over"]["count"] >= 1
    assert 4.0 < ended["summary"]["duration_s"] < CALL_S
    assert d.records[-1]["event"] == "stopped"
