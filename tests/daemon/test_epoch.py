"""A stream's epoch (ring, timestamps, counters) and the processing loop's reader of it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from daemon.epoch import TIMESTAMP_SLOTS, Epoch, StreamReader

sd = pytest.importorskip("sounddevice", reason="needs Debian's libportaudio2 (make test)")


def block(n: int, start: float = 0.0) -> np.ndarray:
    return (start + np.arange(n, dtype=np.float32)).reshape(-1, 1) / 1000.0


def test_callback_stores_times_and_counts_overflows_from_the_documented_flags():
    woken = []
    ep = Epoch(1000, 16000, wake=lambda: woken.append(1))
    info = SimpleNamespace(inputBufferAdcTime=10.0, currentTime=10.02)
    ep.callback(block(160), 160, info, sd.CallbackFlags())
    ep.callback(block(160, 160), 160, info, sd.CallbackFlags(0x2))   # paInputOverflow
    assert (ep.callbacks, ep.overflows, ep.n_seen, len(woken)) == (2, 1, 320, 2)
    assert ep.ts_n[:2].tolist() == [0, 160]
    r = StreamReader()
    assert r.switch(ep)
    assert r.read_samples().tolist() == (np.arange(320, dtype=np.float32) / 1000.0).tolist()


def test_pushed_blocks_and_marks_come_back_in_order():
    ep = Epoch(1000, 16000)
    ep.push(block(100)[:, 0], 5.0)
    ep.push(block(100, 100)[:, 0], None)          # timed by a mark instead
    ep.mark(150, 5.01)
    r = StreamReader()
    r.switch(ep)
    assert r.read_timestamps() == [(0, 5.0), (150, 5.01)]
    assert r.read_timestamps() == []              # each timestamp is read once
    assert len(r.read_samples()) == 200
    for k in range(TIMESTAMP_SLOTS + 5):          # more than the slots hold: the newest
        ep.mark(200 + k, 6.0 + k)
    got = r.read_timestamps()
    assert len(got) == TIMESTAMP_SLOTS - 1 and got[-1] == (200 + TIMESTAMP_SLOTS + 4,
                                                           6.0 + TIMESTAMP_SLOTS + 4)


def test_dropped_frames_come_back_as_silence_and_counters_survive_a_new_epoch():
    ep = Epoch(100, 16000)
    ep.push(np.ones(80, np.float32), 1.0)
    ep.push(np.ones(50, np.float32), None)        # 30 frames do not fit the ring
    r = StreamReader()
    r.switch(ep)
    x = r.read_samples()
    assert ep.ring.dropped_frames == 30
    assert len(x) == 130 and x[:100].tolist() == [1.0] * 100
    assert x[100:].tolist() == [0.0] * 30
    overflows, callbacks, dropped = r.totals()
    assert (callbacks, dropped) == (2, ep.ring.overruns) and dropped > 0
    new = Epoch(100, 16000)
    assert r.switch(new) and not r.switch(new)
    new.push(np.ones(10, np.float32), 2.0)
    assert r.totals() == (overflows, 3, dropped)
    assert len(r.read_samples()) == 10
