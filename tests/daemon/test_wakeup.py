"""The loop's wake-up: a block from a capture thread (or a signal) ends the loop's sleep at
once; with nothing set it sleeps the whole timeout; many sets before a wait are one wake."""

from __future__ import annotations

import threading
import time

import numpy as np

from daemon.epoch import Epoch
from daemon.wakeup import Wakeup


def test_a_wait_without_a_set_sleeps_the_whole_timeout():
    w = Wakeup()
    t0 = time.monotonic()
    assert w.wait(0.1) is False
    assert time.monotonic() - t0 >= 0.09


def test_a_set_from_another_thread_ends_the_sleep_at_once():
    w = Wakeup()
    timer = threading.Timer(0.05, w.set)
    timer.start()
    t0 = time.monotonic()
    assert w.wait(5.0) is True
    assert time.monotonic() - t0 < 2.0
    timer.join()


def test_many_sets_are_one_wake_and_the_flag_clears():
    w = Wakeup()
    for _ in range(1000):
        w.set()
    assert w.wait(0.0) is True
    assert w.wait(0.0) is False


def test_every_stored_block_wakes_the_loop():
    w = Wakeup()
    ep = Epoch(4096, 16000, wake=w.set)
    assert w.wait(0.0) is False
    ep.push(np.zeros(320, np.float32), 1.0)
    assert w.wait(0.0) is True
    assert w.wait(0.0) is False
