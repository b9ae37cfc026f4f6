"""The daemon's state directory and its atomic JSON writes (daemon.state)."""

from __future__ import annotations

import json

import pytest

from daemon.state import DaemonState, state_dir, write_json_atomic
from dsp.events import Stream


def test_state_dir_follows_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "callwatch"


def test_state_dir_falls_back_to_local_state_in_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert state_dir() == tmp_path / ".local" / "state" / "callwatch"


def test_write_json_atomic_creates_a_private_directory(tmp_path):
    target = tmp_path / "state" / "callwatch" / "check.json"
    write_json_atomic(target, {"a": 1})
    assert target.parent.stat().st_mode & 0o777 == 0o700


def test_write_json_atomic_creates_the_directory_and_replaces_the_file(tmp_path):
    target = tmp_path / "deep" / "er" / "thing.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2, "b": [1.5]})
    assert json.loads(target.read_text()) == {"a": 2, "b": [1.5]}
    assert target.read_text().endswith("\n")
    assert sorted(p.name for p in target.parent.iterdir()) == ["thing.json"]  # no temp left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "thing.json"
    write_json_atomic(target, {"kept": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})  # not JSON: fails half-way through
    assert json.loads(target.read_text()) == {"kept": True}
    assert [p.name for p in tmp_path.iterdir()] == ["thing.json"]


def test_daemon_state_has_one_health_record_per_stream():
    state = DaemonState(agent_id="a@b")
    assert set(state.streams) == set(Stream)
    assert state.streams[Stream.AGENT] is not state.streams[Stream.CUSTOMER]
