"""A CI-sized soak (``bench/soak.py``; the 8-hour figures are in BENCHMARKS.md): half an hour
of calls through the live replay path in well under a minute, with scrapes, WebSocket clients
coming and going (some dropping the connection), control calls and config reloads throughout.
Memory, open fds and threads stay flat, the daemon's queues stay bounded, and nothing is
logged as an error."""

from __future__ import annotations

import pytest

from bench.soak import flatness, run_soak

pytestmark = pytest.mark.integration


def test_half_an_hour_of_calls_under_load_leaves_nothing_growing(tmp_path):
    res = run_soak(0.5, tmp_path, sample_every_s=0.2, scrape_every_s=0.2, timeout_s=300)
    assert res.errors == [], res.errors
    assert res.exit_code == 0
    flat = flatness(res)
    assert flat["problems"] == [], flat

    # the load really ran, and the daemon really did its work under it
    for what in ("scrapes", "ws_clients", "ws_dropped_connections", "ws_steady_messages",
                 "reloads"):
        assert res.load[what] > 0, (what, res.load)
    assert res.events["call_started"] >= 20  # one per repetition (31 s call + 40 s pause)
    assert res.events["call_ended"] >= res.events["call_started"] - 1
    assert res.events["config_reloaded"] >= 1
    assert res.events["alert"] > 0

    queues = flat["queues_max"]
    assert queues["control_requests"] <= 2 and queues["device_events"] == 0
    assert queues["websocket_messages"] <= 256  # [server] queue_max_messages
    assert queues["ring_frames"] <= 2 * 16000  # the ring's 2 s
