"""``callwatch check --dbspl-at-0dbfs``: the sensitivity is recorded for the far-end device's
headset model on the virtual PulseAudio headset, and the daemon's lookup finds it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.hearing import effective_sensitivity, load_sensitivities
from dsp.hearing import HearingSettings
from tests.integration.pulse import PulseServer, virtual_headset  # noqa: F401

pytestmark = pytest.mark.integration
HEADSET = '[capture]\nmic_device = "headset_mic"\nfar_end_device = "speaker_monitor"\n'


def check(server: PulseServer, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp / "config.toml"
    cfg.write_text(HEADSET)
    env = server.full_env(XDG_STATE_HOME=str(tmp / "state"), XDG_CONFIG_HOME=str(tmp / "cfg"))
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check", "--config", str(cfg), "--non-interactive",
         "--json", "--no-playback", "--silence-s", "1", *extra],
        capture_output=True, text=True, env=env, timeout=90)


def test_sensitivity_is_recorded_per_headset_model(virtual_headset, tmp_path):  # noqa: F811
    out = check(virtual_headset, tmp_path, "--dbspl-at-0dbfs", "104.5")
    assert json.loads(out.stdout)["schema"] == "callwatch.check/1", out.stderr
    assert "recorded dbspl_at_0dbfs = 104.5 for headset_speaker" in out.stderr
    recorded = load_sensitivities(tmp_path / "state" / "callwatch" / "sensitivity.json")
    assert recorded == {"headset_speaker": 104.5}
    assert effective_sensitivity(HearingSettings(), "headset_speaker", recorded) == (104.5,
                                                                                     "check")


def test_an_impossible_sensitivity_is_refused_before_any_test(virtual_headset, tmp_path):  # noqa: F811
    out = check(virtual_headset, tmp_path, "--dbspl-at-0dbfs", "20")
    assert out.returncode == 2
    result = json.loads(out.stdout)                       # --json: the refusal, as JSON
    assert (result["result"], result["exit_code"], result["items"]) == ("error", 2, [])
    assert result["error"].startswith("--dbspl-at-0dbfs 20: must be between 60 and 140")
    assert "--dbspl-at-0dbfs 20: must be between 60 and 140" in out.stderr
    assert not (tmp_path / "state" / "callwatch" / "sensitivity.json").exists()


@pytest.mark.parametrize("backend", ["pulse", "portaudio"])
def test_the_live_daemon_takes_the_sensitivity_recorded_for_its_headset(virtual_headset,  # noqa: F811
                                                                         tmp_path, backend):
    """`check` records the sensitivity under the far-end sink's name; the daemon looks it up
    under the same name, and its metrics say the headset is calibrated. With the pulse backend
    (the far end named by part of its source name) it looked up the source's own name
    (``headset_speaker.monitor``) and found nothing; with PortAudio (the far end an ALSA
    device, ``speaker_monitor``), that device's name, until it looks the source up where the
    stream landed."""
    import urllib.request

    from tests.integration.daemon_run import DaemonProcess
    from tests.ports import free_port

    out = check(virtual_headset, tmp_path, "--dbspl-at-0dbfs", "104.5")
    assert "recorded dbspl_at_0dbfs = 104.5" in out.stderr, out.stderr
    port = free_port()
    config = HEADSET + f'backend = "{backend}"\n[server]\nport = 0\n[metrics]\nport = {port}\n'
    d = DaemonProcess(tmp_path / "d", config,
                      env=virtual_headset.full_env(XDG_STATE_HOME=str(tmp_path / "state")),
                      servers=True)
    try:
        d.event("device_up", stream="customer", timeout=15)
        # The processing loop applies the device's sensitivity after it reports the device
        # up: on a loaded machine the first scrape can come between the two.
        deadline = time.monotonic() + 10.0
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
            if "callwatch_hearing_calibrated 1.0" in text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "callwatch_hearing_calibrated 1.0" in text
        assert "callwatch_hearing_sensitivity_db 104.5" in text
        assert d.event("started")["backend"] == backend
    finally:
        d.kill()
