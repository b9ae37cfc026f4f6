"""Fixtures of the alert tests: private config and runtime directories (token files never
touch the user's, and `callwatch tail` never asks a daemon running on this machine) and a
started AlertServer that records the snoozes it is handed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts.server import AlertServer, ServerSettings
from tests.alerts.live_server import HELLO


@pytest.fixture(autouse=True)
def config_home(tmp_path, monkeypatch):
    """Token files go to a temporary config dir, never the user's; the control socket tail
    asks is looked for in a temporary runtime dir, where no daemon runs."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "config"


@pytest.fixture
def snoozes() -> list:
    """The (kind, minutes) snoozes the ``server`` fixture was handed, in order."""
    return []


@pytest.fixture
def server(snoozes) -> Iterator[AlertServer]:
    """A started server on a free loopback port, stopped after the test."""
    srv = AlertServer(ServerSettings(port=0), HELLO,
                      on_snooze=lambda kind, minutes: snoozes.append((kind, minutes)))
    srv.start()
    yield srv
    srv.stop()
