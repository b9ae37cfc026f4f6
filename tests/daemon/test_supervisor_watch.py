"""The capture supervisor's watch: how often it looks, and that an ended stream or a change
on the server is looked at at once rather than at the next period."""

from __future__ import annotations

import queue
import threading

import numpy as np

from daemon import supervisor as sup
from daemon.capture import CaptureStream
from daemon.config import CaptureSettings
from daemon.device_event import DeviceEvent
from daemon.epoch import Epoch
from daemon.state import StreamHealth


class _Stream:
    """Stands for a running stream: always active."""

    active = True

    def abort(self) -> None:
        pass

    def close(self) -> None:
        pass


class FakeCapture(CaptureStream):
    """A capture stream whose opening needs no device: a fresh epoch that has delivered."""

    def __init__(self, name: str, settings: CaptureSettings) -> None:
        super().__init__(name, "default", "mic_device", "mic", settings, StreamHealth())
        self.closed = threading.Event()

    def open(self, sd: object) -> None:
        ep = Epoch(1600, 16000)
        ep.push(np.zeros(160, np.float32), None)
        self.epoch, self.stream, self.opening = ep, _Stream(), True

    def close(self) -> None:
        super().close()
        self.closed.set()


def _supervisor(settings: CaptureSettings) -> tuple[sup.Supervisor, list[FakeCapture]]:
    streams = [FakeCapture("agent", settings), FakeCapture("customer", settings)]
    events: queue.SimpleQueue[DeviceEvent] = queue.SimpleQueue()
    return sup.Supervisor(list(streams), settings, events), streams


def test_the_watch_looks_often_only_while_something_is_in_motion():
    settings = CaptureSettings(device_check_s=0)
    s, (agent, customer) = _supervisor(settings)
    for c in (agent, customer):
        c.open(None)
    assert s.interval() == sup.SUPERVISE_EVERY_S  # both opening: watch for their first audio
    agent.opening = customer.opening = False
    assert s.interval() == sup.SUPERVISE_STEADY_S > sup.SUPERVISE_EVERY_S
    customer.opening = True
    assert s.interval() == sup.SUPERVISE_EVERY_S
    customer.opening = False
    customer.stream = None  # down: retrying
    assert s.interval() == sup.SUPERVISE_EVERY_S


def test_an_ended_stream_is_taken_down_at_once_not_at_the_next_steady_look(monkeypatch):
    monkeypatch.setattr(sup, "SUPERVISE_STEADY_S", 60.0)
    settings = CaptureSettings(device_check_s=0, stall_timeout_s=30.0)
    s, (agent, customer) = _supervisor(settings)
    s.start_initial(None)
    try:
        for c in (agent, customer):  # the watch sees both deliver and calls them up
            for _ in range(100):
                if not c.opening:
                    break
                threading.Event().wait(0.05)
            assert not c.opening
        assert s.interval() == 60.0
        s.notice_ended()  # nothing ended: no early look
        assert not agent.closed.wait(0.3)
        assert agent.epoch is not None
        agent.epoch.finished = True
        s.notice_ended()  # what the processing loop does after each pass
        assert agent.closed.wait(10.0)
        assert not customer.closed.is_set()
    finally:
        s.stop()
