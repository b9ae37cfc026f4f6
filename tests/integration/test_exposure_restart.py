"""The day's noise exposure survives a daemon restart: two real daemons capture the same loud
far end on the virtual headset one after the other with the same state directory, and the
second ends with about twice the dose of the first, not its own alone. A replay in between
neither reads nor changes it: replayed audio never reached the agent's ears."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import soundfile as sf

from tests.integration.daemon_run import ROOT, DaemonProcess
from tests.integration.pulse import PulseServer, virtual_headset  # noqa: F401

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "sample-call.wav"
CONFIG = """[hearing]
dbspl_at_0dbfs = 110.0
[capture]
backend = "pulse"
mic_device = "headset_mic"
far_end_device = "speaker_monitor"
auto_calls = false
"""
NOISE_S = 4.0


def state(state_home) -> dict:
    data = json.loads((state_home / "callwatch" / "exposure.json").read_text())
    assert data["schema"] == "callwatch.exposure/1"
    return data


def listen(srv: PulseServer, workdir, env, noise) -> None:
    """One daemon hears the loud far end, then stops (and saves the day's state)."""
    d = DaemonProcess(workdir, CONFIG, env=env)
    try:
        d.event("device_up", stream="agent", timeout=15)
        d.event("device_up", stream="customer", timeout=15)
        assert srv.play("headset_speaker", noise).wait(30) == 0
        rc, _ = d.terminate(signal.SIGTERM, timeout=10)
        assert rc == 0, d.stderr.read_text()[-2000:]
    finally:
        d.kill()


def test_the_days_exposure_carries_over_a_restart_and_a_replay_leaves_it(
        virtual_headset: PulseServer, tmp_path):  # noqa: F811
    noise = tmp_path / "noise.wav"
    rng = np.random.default_rng(3)
    sf.write(noise, 0.3 * rng.standard_normal(int(16000 * NOISE_S)).astype(np.float32), 16000,
             subtype="PCM_16")  # ~ -10 dBFS: ~100 dB(A) at this calibration
    home = tmp_path / "state"
    env = virtual_headset.full_env(XDG_STATE_HOME=str(home))
    listen(virtual_headset, tmp_path / "first", env, noise)
    first = state(home)
    assert first["dose_s"] > 0 and first["calibrated_s"] >= NOISE_S - 1
    # A replay of a loud call with the same state directory: the record is untouched.
    before = (home / "callwatch" / "exposure.json").read_bytes()
    d = DaemonProcess(tmp_path / "replay", CONFIG, env=env,
                      args=("--replay", str(SAMPLE), "--speed", "200"))
    assert d.proc.wait(timeout=60) == 0, d.stderr.read_text()
    assert (home / "callwatch" / "exposure.json").read_bytes() == before
    listen(virtual_headset, tmp_path / "second", env, noise)
    second = state(home)
    assert second["day"] == first["day"]
    assert second["calibrated_s"] > first["calibrated_s"] + NOISE_S - 1
    # The same noise heard twice (the silence around it adds next to nothing).
    assert second["dose_s"] == pytest.approx(2 * first["dose_s"], rel=0.15)
