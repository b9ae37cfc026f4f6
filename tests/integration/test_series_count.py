"""The number of series a workstation exports, as README and docs/fleet.md state it, is what a
running daemon serves: counted on `callwatch demo` (the live path replaying the sample call),
scraped once the call is over and every series is populated."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.integration.daemon_run import ROOT
from tests.ports import free_port

pytestmark = pytest.mark.integration


def documented() -> tuple[int, int]:
    """(README's count, docs/fleet.md's count) of series per workstation."""
    readme = re.search(r"(\d+) series per workstation", (ROOT / "README.md").read_text())
    fleet = re.search(r"\*\*per workstation\*\* \| \*\*(\d+)\*\*",
                      (ROOT / "docs" / "fleet.md").read_text())
    assert readme and fleet, "series counts not found in README.md / docs/fleet.md"
    return int(readme.group(1)), int(fleet.group(1))


def test_documented_series_count_is_what_a_daemon_serves(tmp_path):
    readme, fleet = documented()
    assert readme == fleet, (readme, fleet)
    port = free_port()
    config = tmp_path / "xdg" / "callwatch" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[control]\nsocket_path = "{tmp_path / "c.sock"}"\n'
                      f"[server]\nport = 0\n[metrics]\nport = {port}\n")
    log = tmp_path / "events.jsonl"
    env = {**os.environ, "XDG_CONFIG_HOME": str(config.parents[1]),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("NOTIFY_SOCKET", None)
    demo = subprocess.Popen([sys.executable, "-m", "daemon.cli", "demo", "--speed", "50",
                             "--log-json", str(log)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and '"replay_finished"' in log.read_text()):
            assert demo.poll() is None, demo.communicate()[1]
            assert time.monotonic() < deadline, "the replay did not finish"
            time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        demo.send_signal(signal.SIGINT)
        demo.communicate(timeout=10)
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    families = sorted({re.sub(r"(_bucket|_sum|_count)?[{ ].*", "", s) for s in series})
    assert len(series) == fleet, (
        f"the daemon serves {len(series)} series, README.md and docs/fleet.md say {fleet}: "
        f"update both (families: {json.dumps(families)})")
