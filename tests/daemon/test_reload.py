"""What a config reload applies, keeps and reports (daemon.reload), without a daemon."""

from __future__ import annotations

import dataclasses

from daemon.config import Config, load_config
from daemon.reload import RESTART_FREE_CAPTURE_KEYS, changes, plan


def _config() -> Config:
    return load_config(None)


def test_changes_lists_each_differing_setting_with_old_and_new():
    old = _config().detectors
    new = dataclasses.replace(old, min_overlap_s=0.9, remove_hum=False)
    assert changes(old, new, "detectors") == {
        "detectors.min_overlap_s": [old.min_overlap_s, 0.9],
        "detectors.remove_hum": [True, False]}
    assert changes(old, old, "detectors") == {}
    assert changes(None, new, "detectors") == {}


def test_a_reload_applies_what_it_can_and_keeps_what_needs_a_restart():
    old = _config()
    cap = old.capture
    new = dataclasses.replace(
        old,
        detectors=dataclasses.replace(old.detectors, min_overlap_s=1.2),
        capture=dataclasses.replace(cap, call_end_silence_s=cap.call_end_silence_s + 5,
                                    block_s=cap.block_s * 2))
    p = plan(old, new)
    assert p.changed["detectors.min_overlap_s"] == [old.detectors.min_overlap_s, 1.2]
    assert "capture.call_end_silence_s" in RESTART_FREE_CAPTURE_KEYS
    assert p.needs_restart == ["capture.block_s"]
    assert p.config.capture.block_s == cap.block_s                   # kept as it runs
    assert p.config.capture.call_end_silence_s == cap.call_end_silence_s + 5
    assert p.config.detectors.min_overlap_s == 1.2
    assert not p.hearing_changed


def test_hearing_changes_are_reported_and_flagged():
    old = _config()
    new = dataclasses.replace(old, hearing=dataclasses.replace(
        old.hearing, shock_release_s=old.hearing.shock_release_s + 0.5))
    p = plan(old, new)
    assert p.hearing_changed
    assert p.changed == {"hearing.shock_release_s": [old.hearing.shock_release_s,
                                                     old.hearing.shock_release_s + 0.5]}
    assert p.needs_restart == []


def test_endpoint_and_identity_changes_are_named_as_waiting_for_a_restart():
    """[agent], [control], [server] and [metrics] are set up at start: a reload reports each
    changed key as needing a restart, keeps the running values, and never logs a secret."""
    old = _config()
    new = dataclasses.replace(
        old,
        agent=dataclasses.replace(old.agent, id="ana@ws-17"),
        control=dataclasses.replace(old.control, socket_path="/run/user/1000/cw.sock"),
        server=dataclasses.replace(old.server, port=9000, token="a-new-token-0123456789"),
        metrics=dataclasses.replace(old.metrics, port=9999),
        detectors=dataclasses.replace(old.detectors, min_overlap_s=1.2))
    p = plan(old, new)
    assert p.needs_restart == ["agent.id", "control.socket_path", "server.port",
                               "server.token", "metrics.port"]
    assert p.changed["server.port"] == [old.server.port, 9000]
    assert p.changed["server.token"] == ["(hidden)", "(hidden)"]
    assert "a-new-token" not in repr(p.changed) and "a-new-token" not in p.restart_warning
    assert (p.config.agent, p.config.control, p.config.server, p.config.metrics) == \
        (old.agent, old.control, old.server, old.metrics)              # kept as they run
    assert p.config.detectors.min_overlap_s == 1.2                     # applied at once
    assert p.restart_warning.startswith(
        "[agent] id, [control] socket_path, [server] port, [server] token, [metrics] port: "
        "changed, but the running daemon keeps the old value until it restarts")
    assert plan(old, old).restart_warning is None
