"""RingBuffer: wrap-around, exact overrun accounting, and a real two-thread stress run."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from daemon.ring import RingBuffer


def ramp(start: int, n: int, channels: int = 1) -> np.ndarray:
    """Frames whose channel c holds start+i + c*0.25, so order and channel mix-ups both show."""
    i = np.arange(start, start + n, dtype=np.float64)[:, None]
    return (i + 0.25 * np.arange(channels)[None, :]).astype(np.float32)


def test_wraps_around_and_returns_frames_in_order() -> None:
    ring = RingBuffer(8, channels=2)
    assert ring.write(ramp(0, 6, 2)) == 6
    np.testing.assert_array_equal(ring.read(5), ramp(0, 5, 2))
    assert ring.write(ramp(6, 7, 2)) == 7  # positions 6,7 then 0..4: crosses the end
    assert ring.available() == 8
    out = ring.read()
    np.testing.assert_array_equal(out, ramp(5, 8, 2))
    assert out.shape == (8, 2) and out.dtype == np.float32
    assert ring.available() == 0 and ring.overruns == 0 and ring.dropped_frames == 0


def test_mono_ring_accepts_1d_blocks() -> None:
    ring = RingBuffer(4)
    ring.write(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    ring.read(2)
    ring.write(np.array([4.0, 5.0, 6.0]))  # float64 in, stored as float32, wraps
    out = ring.read()
    assert out.shape == (4, 1)
    np.testing.assert_array_equal(out[:, 0], [3.0, 4.0, 5.0, 6.0])


def test_overruns_drop_the_incoming_excess_and_count_exactly() -> None:
    ring = RingBuffer(10)
    assert ring.write(ramp(0, 7)) == 7
    assert ring.write(ramp(7, 5)) == 3  # 2 frames lost
    assert ring.write(ramp(12, 4)) == 0  # full: all 4 lost
    assert ring.write(ramp(16, 0)) == 0  # an empty block is not an overrun
    assert (ring.overruns, ring.dropped_frames) == (2, 6)
    np.testing.assert_array_equal(ring.read(), ramp(0, 10))
    assert ring.write(ramp(20, 10)) == 10  # room again: no new overrun
    assert (ring.overruns, ring.dropped_frames) == (2, 6)
    assert ring.frames_written == 20 and ring.frames_read == 10


def test_reading_in_odd_sizes_gives_the_written_sequence_back() -> None:
    rng = np.random.default_rng(1)
    ring = RingBuffer(37, channels=3)
    got: list[np.ndarray] = []
    pos = 0
    for _ in range(400):
        n = int(rng.integers(0, 20))
        if ring.capacity - ring.available() >= n:
            assert ring.write(ramp(pos, n, 3)) == n
            pos += n
        got.append(ring.read(int(rng.integers(0, 23))))
    got.append(ring.read())
    np.testing.assert_array_equal(np.concatenate(got), ramp(0, pos, 3))
    assert ring.read(5).shape == (0, 3)


def test_bad_shapes_and_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity_frames"):
        RingBuffer(0)
    with pytest.raises(ValueError, match="2-channel ring"):
        RingBuffer(4, channels=2).write(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="max_frames"):
        RingBuffer(4).read(-1)


def _run_threads(ring: RingBuffer, total: int, retry: bool, seed: int) -> list[np.ndarray]:
    """Producer writes a counter in random blocks; consumer drains in random sizes."""
    got: list[np.ndarray] = []
    done = threading.Event()

    def produce() -> None:
        rng = np.random.default_rng(seed)
        pos = 0
        while pos < total:
            n = min(int(rng.integers(1, 700)), total - pos)
            block = ramp(pos, n, 2)
            k = ring.write(block)
            while retry and k < n:
                time.sleep(0)
                k += ring.write(block[k:])
            pos += n
        done.set()

    def consume() -> None:
        rng = np.random.default_rng(seed + 1)
        while True:
            finished = done.is_set()
            got.append(ring.read(int(rng.integers(1, 900))))
            if finished and ring.available() == 0:
                return
            time.sleep(0)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive(), "ring stress test hung"
    return got


def test_threaded_producer_consumer_keeps_samples_continuous() -> None:
    total = 300_000
    ring = RingBuffer(1024, channels=2)
    t0 = time.perf_counter()
    got = np.concatenate(_run_threads(ring, total, retry=True, seed=7))
    assert time.perf_counter() - t0 < 2.0
    np.testing.assert_array_equal(got, ramp(0, total, 2))


def test_threaded_overruns_lose_whole_tails_and_account_for_every_frame() -> None:
    total = 200_000
    ring = RingBuffer(600, channels=2)
    got = np.concatenate(_run_threads(ring, total, retry=False, seed=11))
    # What arrived is the offered counter with gaps; never reordered, never mixed channels.
    assert np.all(np.diff(got[:, 0]) >= 1.0)
    np.testing.assert_array_equal(got[:, 1] - got[:, 0], np.float32(0.25))
    assert len(got) + ring.dropped_frames == total
    assert ring.overruns > 0  # blocks of up to 699 frames cannot all fit a 600-frame ring
    assert ring.dropped_frames >= ring.overruns
    assert ring.frames_written == len(got)
