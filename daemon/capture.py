"""A live capture stream: one device (agent mic or far end) opened through PortAudio into a
fresh :class:`daemon.epoch.Epoch` each time, with the recovery state the supervisor
(:mod:`daemon.supervisor`) keeps on it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from daemon.config import CaptureSettings
from daemon.device_choice import DeviceChoice
from daemon.devices import resolve
from daemon.epoch import Epoch
from daemon.state import StreamHealth

FIRST_CALLBACK_GRACE_S = 2.5
"""A freshly opened stream may take this long to deliver (an idle null sink renders in ~2 s
blocks); only then does the stall watchdog apply."""


class CaptureStream:
    """One device stream (agent mic or far end) with its recovery state."""

    def __init__(self, name: str, spec: str | int, key: str, role: str,
                 settings: CaptureSettings, health: StreamHealth) -> None:
        self.name = name
        self.spec = spec
        self.key = key
        self.role = role
        self.settings = settings
        self.health = health
        self.epoch: Epoch | None = None
        """Published to the processing loop; replaced (never mutated back) on reopen."""
        self.stream: Any = None
        self.choice: DeviceChoice | None = None
        self.source: str | None = None
        """PulseAudio source the stream was on when it started delivering."""
        self.up = False
        self.announced = False
        """``device_up`` was logged (once per daemon: later openings are restores or quiet
        reopens)."""
        self.unlisted = False
        """The last open failed because PortAudio's device list has no match for the spec."""
        self.opening = False
        self.lost_at: float | None = None
        self.lost_reason = ""
        self.next_retry = 0.0
        self.backoff = settings.retry_min_s
        self.rate = settings.samplerate_hz
        self.wake: Callable[[], None] | None = None
        """Given to each epoch: wakes the processing loop when a block arrives."""

    # -- open/close -------------------------------------------------------------------------

    def open(self, sd: Any) -> None:
        """Resolve the spec and start a stream (raises DeviceError / PortAudioError)."""
        choice = resolve(sd, self.spec, self.role, self.key)
        rate = self.settings.samplerate_hz
        if not rate:
            rate = int(sd.query_devices(choice.index)["default_samplerate"])
        blocksize = max(1, round(self.settings.block_s * rate))
        epoch = Epoch(max(blocksize * 4, round(self.settings.ring_s * rate)), rate,
                      wake=self.wake)
        saved = {k: os.environ.get(k) for k in ("PULSE_PROP", "PULSE_SOURCE")}
        os.environ["PULSE_PROP"] = f"callwatch.stream={self.name} application.name=callwatch"
        if choice.pulse_source:
            os.environ["PULSE_SOURCE"] = choice.pulse_source
        try:
            stream = sd.InputStream(
                device=choice.index, samplerate=rate, channels=1, dtype="float32",
                blocksize=blocksize, latency="high", callback=epoch.callback,
                finished_callback=epoch.finished_callback)
            epoch.latency_s = float(stream.latency)
            stream.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        epoch.opened_at = time.monotonic()
        self.stream, self.choice, self.rate = stream, choice, rate
        self.source = None
        self.epoch = epoch
        self.opening = True
        self.health.device_name = choice.label

    def pump(self) -> None:
        """Take the audio that arrived since the last tick into the ring (the processing
        loop, each pass). PortAudio's callback thread stores it as it comes: nothing to do."""

    def close(self) -> None:
        """abort(), never stop(): stop() waits for a stalled source (~20 s)."""
        s, self.stream = self.stream, None
        if s is None:
            return
        with contextlib.suppress(Exception):
            s.abort()
        with contextlib.suppress(Exception):
            s.close()

    # -- health -----------------------------------------------------------------------------

    def fault(self, now: float) -> str | None:
        """Why the running stream is no good, or None."""
        ep, s = self.epoch, self.stream
        if ep is None or s is None:
            return None
        if ep.finished or not s.active:
            return "stream ended by the sound server"
        since = ep.last_callback if ep.callbacks else ep.opened_at
        limit = self.settings.stall_timeout_s + (0.0 if ep.callbacks else FIRST_CALLBACK_GRACE_S)
        if now - since > limit:
            return f"no audio callback for {now - since:.1f} s (source suspended or stalled)"
        return None
