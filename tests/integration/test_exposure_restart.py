"""The day's noise exposure survives a daemon restart: two real daemons replay the sample call
one after the other with the same state directory, and the second ends with twice the dose
of the first (the same audio heard twice), not its own call's alone."""

from __future__ import annotations

import json
import os

import pytest

from tests.integration.daemon_run import ROOT, DaemonProcess

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "sample-call.wav"
CONFIG = "[hearing]\ndbspl_at_0dbfs = 110.0\n"


def replay(workdir, env) -> dict:
    d = DaemonProcess(workdir, CONFIG, args=("--replay", str(SAMPLE), "--speed", "200"),
                      env=env)
    assert d.proc.wait(timeout=60) == 0, d.stderr.read_text()
    state = json.loads((workdir.parent / "state" / "callwatch" / "exposure.json").read_text())
    assert state["schema"] == "callwatch.exposure/1"
    return state


def test_the_days_exposure_carries_over_a_restart(tmp_path):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    first = replay(tmp_path / "first", env)
    assert first["dose_s"] > 0  # the 31 s call, calibrated, counted in whole seconds:
    assert first["calibrated_s"] == pytest.approx(31.0, abs=1.5)
    second = replay(tmp_path / "second", env)
    assert second["day"] == first["day"]
    assert second["calibrated_s"] == pytest.approx(2 * first["calibrated_s"], rel=1e-3)
    assert second["dose_s"] == pytest.approx(2 * first["dose_s"], rel=1e-3)
