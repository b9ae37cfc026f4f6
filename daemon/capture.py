"""Live capture: PortAudio input streams into ring buffers, and the supervisor that keeps
them running through device faults.

The audio callback runs on PortAudio's real-time thread. It does only what cannot wait: copy
the block into a preallocated :class:`dsp.ring.RingBuffer`, note the block's capture time and
first sample index in preallocated arrays, OR the status flags into plain integers and bump
counters. No allocation of arrays, no locks, no logging, no Prometheus: any of those can miss
the driver's deadline and cause the very overflows we count.

Faults seen on Linux sound servers, and how each is caught (all by the supervisor thread,
never by the callback):

* stream killed by the server, or the server gone: ``finished_callback`` fires and the stream
  is no longer ``active`` although we never stopped it;
* source unloaded (headset unplugged): the server silently *moves* the stream to another
  source, callbacks go on. Each stream is tagged with ``PULSE_PROP`` and ``pactl`` tells which
  source it is on; a stream no longer on the source it was opened on is lost. ``pactl
  subscribe`` triggers the check when the server reports a change;
* source suspended: callbacks simply stop. A watchdog on the time since the last callback
  catches it; the stream is ``abort()``-ed (``stop()`` can block ~20 s there);
* sound server restarted: every stream dies; PortAudio's device list is stale until
  ``sd._terminate(); sd._initialize()``, which closes all streams, so it is done only when
  every stream is down anyway.

Recovery: close, wait (exponential backoff between ``retry_min_s`` and ``retry_max_s``),
re-resolve the device spec, reopen. A stream counts as restored at its first callback.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemon.config import CaptureSettings
from daemon.devices import DeviceChoice, DeviceError, resolve, stream_sources
from daemon.state import StreamHealth
from dsp.ring import RingBuffer

PA_INPUT_OVERFLOW = 0x2
"""``paInputOverflow`` in PortAudio's callback flags."""

TIMESTAMP_SLOTS = 512
"""Capture timestamps kept per stream (512 blocks: >10 s at 20 ms), read every loop pass."""

FIRST_CALLBACK_GRACE_S = 2.5
"""A freshly opened stream may take this long to deliver (an idle null sink renders in ~2 s
blocks); only then does the stall watchdog apply."""

SUPERVISE_EVERY_S = 0.1


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """A device fault or recovery, handed from the supervisor to the processing loop."""

    type: str  # "device_lost" | "device_restored"
    stream: str
    device: str
    reason: str = ""
    down_s: float = 0.0
    restarts: int = 0
    data: dict[str, Any] = field(default_factory=dict)


class Epoch:
    """One opening of one stream: its ring, its timestamps and its callback counters.

    A reopened stream gets a new epoch (sample indices restart at 0); the processing loop
    notices the new object, keeps the old epoch's counters and aligns the new one afresh.
    """

    def __init__(self, ring_frames: int, rate: int, latency_s: float = 0.0) -> None:
        self.ring = RingBuffer(ring_frames, 1, np.float32)
        self.rate = rate
        self.latency_s = latency_s
        self.ts_n = np.zeros(TIMESTAMP_SLOTS, np.int64)
        self.ts_t = np.zeros(TIMESTAMP_SLOTS, np.float64)
        self.ts_count = 0
        self.n_seen = 0
        self.callbacks = 0
        self.overflows = 0
        self.status_bits = 0
        self.last_callback = 0.0
        self.finished = False
        self.opened_at = time.monotonic()

    def callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio input callback: copy, timestamp, count. Nothing else."""
        now = time.monotonic()
        adc = time_info.inputBufferAdcTime
        cur = time_info.currentTime
        if adc > 0.0 and cur >= adc:
            t = now - (cur - adc)
        else:  # host API without timestamps: the block ended about now
            t = now - frames / self.rate - self.latency_s
        self.ring.write(indata)
        i = self.ts_count
        j = i % TIMESTAMP_SLOTS
        self.ts_n[j] = self.n_seen
        self.ts_t[j] = t
        self.ts_count = i + 1
        self.n_seen += frames
        flags = status._flags
        if flags:
            self.status_bits |= flags
            if flags & PA_INPUT_OVERFLOW:
                self.overflows += 1
        self.callbacks += 1
        self.last_callback = now

    def push(self, block: np.ndarray, t: float) -> None:
        """Store a block as the callback would (replayed files use this, with their own
        timestamps)."""
        self.ring.write(block)
        i = self.ts_count
        self.ts_n[i % TIMESTAMP_SLOTS] = self.n_seen
        self.ts_t[i % TIMESTAMP_SLOTS] = t
        self.ts_count = i + 1
        self.n_seen += len(block)
        self.callbacks += 1
        self.last_callback = time.monotonic()

    def finished_callback(self) -> None:
        self.finished = True


class StreamReader:
    """The processing loop's cursor into a stream's current epoch."""

    def __init__(self) -> None:
        self.epoch: Epoch | None = None
        self.ts_read = 0
        self.dropped_seen = 0
        self.base_overflows = 0
        self.base_callbacks = 0
        self.base_dropped = 0

    def switch(self, epoch: Epoch | None) -> bool:
        """Follow the stream to a new epoch; True if it changed (the old one's counters are
        folded into the totals)."""
        if epoch is self.epoch:
            return False
        old = self.epoch
        if old is not None:
            self.base_overflows += old.overflows
            self.base_callbacks += old.callbacks
            self.base_dropped += old.ring.overruns
        self.epoch = epoch
        self.ts_read = 0
        self.dropped_seen = 0
        return True

    def read_timestamps(self) -> list[tuple[int, float]]:
        ep = self.epoch
        if ep is None:
            return []
        end = ep.ts_count
        start = max(self.ts_read, end - TIMESTAMP_SLOTS + 1)
        self.ts_read = end
        if start >= end:
            return []
        idx = np.arange(start, end) % TIMESTAMP_SLOTS
        return list(zip(ep.ts_n[idx].tolist(), ep.ts_t[idx].tolist(), strict=True))

    def read_samples(self) -> np.ndarray:
        """New samples; frames the ring had to drop come back as silence so that sample
        indices keep matching the capture timestamps."""
        ep = self.epoch
        if ep is None:
            return np.zeros(0, np.float32)
        x = ep.ring.read()[:, 0]
        lost = ep.ring.dropped_frames - self.dropped_seen
        if lost:
            self.dropped_seen += lost
            x = np.concatenate([x, np.zeros(lost, np.float32)])
        return x

    def totals(self) -> tuple[int, int, int]:
        """(overflows, callbacks, ring overruns) over every epoch."""
        ep = self.epoch
        if ep is None:
            return self.base_overflows, self.base_callbacks, self.base_dropped
        return (self.base_overflows + ep.overflows, self.base_callbacks + ep.callbacks,
                self.base_dropped + ep.ring.overruns)


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
        self.opening = False
        self.lost_at: float | None = None
        self.lost_reason = ""
        self.next_retry = 0.0
        self.backoff = settings.retry_min_s
        self.rate = settings.samplerate_hz

    # -- open/close -------------------------------------------------------------------------

    def open(self, sd: Any) -> None:
        """Resolve the spec and start a stream (raises DeviceError / PortAudioError)."""
        choice = resolve(sd, self.spec, self.role, self.key)
        rate = self.settings.samplerate_hz
        if not rate:
            rate = int(sd.query_devices(choice.index)["default_samplerate"])
        blocksize = max(1, round(self.settings.block_s * rate))
        epoch = Epoch(max(blocksize * 4, round(self.settings.ring_s * rate)), rate)
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


class Supervisor:
    """Opens both streams, watches them, and reopens what fails, on its own thread."""

    def __init__(self, streams: list[CaptureStream], settings: CaptureSettings,
                 events: queue.SimpleQueue[DeviceEvent]) -> None:
        self.streams = streams
        self.settings = settings
        self.events = events
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sd: Any = None
        self._check_sources = threading.Event()
        self._watch: subprocess.Popen[str] | None = None
        self._watch_thread: threading.Thread | None = None
        self._last_check = 0.0
        self._rescan_needed = False

    def start_initial(self, sd: Any) -> None:
        """Open every stream now, in the caller's thread, so a bad device spec fails the
        command at once (DeviceError) instead of being retried forever."""
        self._sd = sd
        for s in self.streams:
            try:
                s.open(sd)
            except DeviceError:
                for o in self.streams:
                    o.close()
                raise
            except Exception as exc:  # PortAudioError: device exists but cannot open now
                self._mark_lost(s, f"cannot open: {_one_line(exc)}", time.monotonic(),
                                announce=True)
        self._thread = threading.Thread(target=self._run, name="capture-supervisor", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The supervisor thread is running (it retries devices for as long as it is)."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        w = self._watch
        if w is not None and w.poll() is None:
            w.terminate()
        for s in self.streams:
            s.close()

    # -- server change notifications ----------------------------------------------------------

    def _ensure_watch(self) -> None:
        """``pactl subscribe``: wake the source check when the server's sources change."""
        if self.settings.device_check_s <= 0 or shutil.which("pactl") is None:
            return
        w = self._watch
        if w is not None and w.poll() is None:
            return
        try:
            w = subprocess.Popen(["pactl", "subscribe"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        except OSError:
            return
        self._watch = w

        def pump(proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if "source" in line or "server" in line:
                    self._check_sources.set()

        self._watch_thread = threading.Thread(target=pump, args=(w,), daemon=True,
                                              name="pactl-subscribe")
        self._watch_thread.start()

    def _sources_due(self, now: float) -> bool:
        interval = self.settings.device_check_s
        if interval <= 0:
            return False
        if self._check_sources.is_set():
            # Several notifications come in a burst; one check after it settles.
            if now - self._last_check >= 0.2:
                self._check_sources.clear()
                return True
            return False
        watching = self._watch is not None and self._watch.poll() is None
        return not watching and now - self._last_check >= interval

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY_S):
            try:
                self.tick(time.monotonic())
            except Exception as exc:  # never let the supervisor die
                self.events.put(DeviceEvent("supervisor_error", "", "", _one_line(exc)))

    def tick(self, now: float) -> None:
        self._ensure_watch()
        check_sources = self._sources_due(now)
        where: dict[str, str] | None = None
        if check_sources:
            self._last_check = now
            where = stream_sources()
        for s in self.streams:
            if s.stream is not None:
                reason = s.fault(now)
                if reason is None and where is not None and s.source is not None:
                    cur = where.get(s.name)
                    if cur is not None and cur != s.source:
                        reason = f"moved by the sound server from {s.source} to {cur} " \
                                 "(source removed)"
                if reason is not None:
                    s.close()
                    self._mark_lost(s, reason, now, announce=True)
                    continue
                if s.opening and s.epoch is not None and s.epoch.callbacks > 0:
                    self._mark_up(s, now)
                    self._check_sources.set()  # learn which source it landed on
                elif not s.opening and s.source is None and where is not None:
                    s.source = where.get(s.name)
        down = [s for s in self.streams if s.stream is None]
        if not down:
            return
        if all(s.stream is None for s in self.streams) and self._rescan_needed:
            self._rescan()
        for s in down:
            if now < s.next_retry:
                continue
            try:
                s.open(self._sd)
            except Exception as exc:
                s.lost_reason = f"{s.lost_reason.split(';')[0]}; reopen failed: {_one_line(exc)}"
                s.next_retry = now + s.backoff
                s.backoff = min(s.backoff * 2, self.settings.retry_max_s)
                self._rescan_needed = True

    def _rescan(self) -> None:
        """PortAudio's device list is read once; re-read it (this closes every stream, so it
        is only done while all of ours are down)."""
        sd = self._sd
        with contextlib.suppress(Exception):
            sd._terminate()
        with contextlib.suppress(Exception):
            sd._initialize()
        self._rescan_needed = False

    def _mark_lost(self, s: CaptureStream, reason: str, now: float, announce: bool) -> None:
        s.up = False
        s.opening = False
        s.health.device_up = False
        first = s.lost_at is None
        if first:
            s.lost_at = now
            s.backoff = self.settings.retry_min_s
            s.lost_reason = reason
        s.next_retry = now + s.backoff
        s.backoff = min(s.backoff * 2, self.settings.retry_max_s)
        if announce and first:
            self.events.put(DeviceEvent("device_lost", s.name, _label(s), reason))

    def _mark_up(self, s: CaptureStream, now: float) -> None:
        s.opening = False
        s.up = True
        s.health.device_up = True
        if s.lost_at is None:
            self.events.put(DeviceEvent("device_up", s.name, _label(s)))
        else:
            s.health.restarts += 1
            down = now - s.lost_at
            s.lost_at = None
            s.backoff = self.settings.retry_min_s
            self.events.put(DeviceEvent("device_restored", s.name, _label(s), s.lost_reason,
                                        down_s=down, restarts=s.health.restarts))


def _label(s: CaptureStream) -> str:
    return s.choice.label if s.choice is not None else str(s.spec)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
