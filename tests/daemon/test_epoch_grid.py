"""Streams on the shared tick grid (the libpulse reader): blocks without a capture time of
their own are timed by marks, and the processing loop waits for the other stream's block of
the same tick only when every running stream is on the grid."""

from __future__ import annotations

import numpy as np

from daemon.epoch import Epoch, StreamReader


def _grid_epoch() -> Epoch:
    ep = Epoch(16000, 16000)
    ep.grid_s = 0.04
    return ep


def test_blocks_without_a_time_are_timed_by_marks():
    ep = Epoch(16000, 16000)
    ep.push(np.zeros(640, np.float32), None)
    ep.mark(ep.n_seen + 160, 12.5)  # a sample still to come, timed at its arrival
    ep.push(np.zeros(640, np.float32), None)
    ep.push(np.zeros(320, np.float32), 20.0)  # a replayed block keeps its own time
    r = StreamReader()
    r.switch(ep)
    assert r.read_timestamps() == [(800, 12.5), (1280, 20.0)]
    assert len(r.read_samples()) == 1600
    assert ep.callbacks == 3


def test_the_grid_is_steered_so_each_pass_reaches_just_past_a_frame_boundary():
    """Audio that ends 15 ms past a frame boundary at every tick leaves those 15 ms waiting
    a whole block: the grid moves earlier until 9 passes in 10 end a few ms past one."""
    from daemon.epoch import STEER_MARGIN_S, STEER_PASSES, GridPhase

    a, c = _grid_epoch(), _grid_epoch()
    g = GridPhase(0.02)
    t0 = 100.0137  # where the pipeline's frames start: chance
    delay = 0.0113  # how long before the tick the newest audio was captured

    def horizon(k: int) -> float:
        tick = 1000.0 + g.phase_s + 0.04 * k
        return tick - delay - 0.001 * (k % 3)  # plus a little jitter

    first = (horizon(0) - t0) % 0.02
    assert first > 2 * STEER_MARGIN_S  # as the grid fell: most of a frame left waiting
    for k in range(3 * STEER_PASSES):
        g.observe(horizon(k), t0, (a, c, None))
    past = sorted((horizon(k) - t0) % 0.02 for k in range(30))
    assert past[0] >= STEER_MARGIN_S / 4 and past[-1] <= 2 * STEER_MARGIN_S, past
    assert a.grid_phase_s == c.grid_phase_s == g.phase_s
    steady = g.phase_s
    for k in range(3 * STEER_PASSES):
        g.observe(horizon(k), t0, (a, c))
    assert g.phase_s == steady  # in place: it stays


def test_the_grid_is_left_alone_when_the_server_sends_whole_blocks():
    """With 40 ms packets the audio ends where the packets fall, whatever the tick: one step
    that moves nothing, then the grid stays put instead of walking around."""
    from daemon.epoch import STEER_PASSES, GridPhase

    a, c = _grid_epoch(), _grid_epoch()
    g = GridPhase(0.02)
    t0 = 100.0137
    for k in range(2 * STEER_PASSES):
        g.observe(1000.0 + 0.04 * k - 0.0113, t0, (a, c))
    moved = g.phase_s
    assert moved != 0.0  # it tried once
    for k in range(20 * STEER_PASSES):
        g.observe(1000.0 + 0.04 * k - 0.0113, t0, (a, c))
    assert g.phase_s == moved


def test_the_next_tick_waits_for_the_audio_a_pass_needs():
    """The loop wakes at the first tick of the grid that can bring the audio it needs: a tick
    before that capture time would only read and sleep again (a pass for nothing)."""
    from daemon.epoch import next_grid_tick

    # Ticks at 0.013 + k * 0.04.
    assert abs(next_grid_tick(10.0, 0.013, 0.04, 0.0) - 10.013) < 1e-9
    assert abs(next_grid_tick(10.014, 0.013, 0.04, 0.0) - 10.053) < 1e-9  # after now
    # The audio it needs is complete at 10.3: ticks 10.053 ... 10.293 are skipped.
    assert abs(next_grid_tick(10.0, 0.013, 0.04, 10.3) - 10.333) < 1e-9
    # A tick exactly at that time is the one.
    assert abs(next_grid_tick(10.0, 0.013, 0.04, 10.293) - 10.293) < 1e-9
    # A time in the past leaves the next tick as it is.
    assert abs(next_grid_tick(10.0, 0.013, 0.04, 9.0) - 10.013) < 1e-9
