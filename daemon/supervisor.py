"""The capture supervisor: opens both streams, watches them, and reopens what fails, on its
own thread, never in the audio callback.

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
  ``sd._terminate(); sd._initialize()``, which closes all streams, so it is done when every
  stream is down anyway;
* a device missing from the re-read list: PortAudio probes each device once, so a list read
  while the server was still coming up (or before a late device appeared) lacks it for good.
  If one stream cannot find its device while the other runs, the list is read again - which
  briefly reopens the running stream - when the server's sources changed since the last
  reading, else after a backoff (1 s doubling to 60 s).

Recovery: close, wait (exponential backoff between ``retry_min_s`` and ``retry_max_s``),
re-resolve the device spec, reopen. A stream counts as restored at its first callback.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import threading
import time
from typing import Any

from daemon.capture import CaptureStream
from daemon.config import CaptureSettings
from daemon.device_choice import DeviceError, DeviceNotListed
from daemon.device_event import DeviceEvent, DeviceEventKind
from daemon.devices import pulse_sources, stream_sources

SUPERVISE_EVERY_S = 0.1
"""The watch's period while anything is in motion: a stream down or opening, or the server's
sources changing."""

SUPERVISE_STEADY_S = 0.5
"""The watch's period while every stream is up and delivering: then it only looks for a
stall (``stall_timeout_s``, 1 s by default). A stream that ends, or a change of the server's
sources, wakes it at once (:meth:`Supervisor.notice_ended`, the ``pactl subscribe`` reader),
so nothing waits for this period but a stall, and the thread wakes 2 times a second instead
of 10 in a call."""

STALE_LIST_RESCAN_MIN_S = 1.0
STALE_LIST_RESCAN_MAX_S = 60.0
"""Backoff of device-list re-reads while another stream runs: each costs the running stream
a reopen (~0.3 s of audio), so they are spaced out unless the server's sources changed."""


class Supervisor:
    """Opens both streams, watches them, and reopens what fails, on its own thread."""

    def __init__(self, streams: list[CaptureStream], settings: CaptureSettings,
                 events: queue.SimpleQueue[DeviceEvent]) -> None:
        self.streams = streams
        self.settings = settings
        self.events = events
        self._stop = threading.Event()
        self._poke = threading.Event()
        """Set to run the watch now (a stream ended, the server's sources changed, stop)."""
        self._thread: threading.Thread | None = None
        self._sd: Any = None
        self._check_sources = threading.Event()
        self._watch: subprocess.Popen[str] | None = None
        self._watch_thread: threading.Thread | None = None
        self._last_check = 0.0
        self._rescan_needed = False
        self._sources_seen: frozenset[str] | None = None
        """The server's sources just before PortAudio's list was last read."""
        self._stale_backoff = STALE_LIST_RESCAN_MIN_S
        self._stale_next = 0.0

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

    def notice_ended(self) -> None:
        """The processing loop, after each pass: a stream that ended (its epoch finished)
        is reopened at once, not at the next steady period."""
        for s in self.streams:
            ep = s.epoch
            if s.stream is not None and ep is not None and ep.finished:
                self._poke.set()
                return

    def interval(self) -> float:
        """How long the watch sleeps now: short while anything is in motion."""
        if self._check_sources.is_set() and self.settings.device_check_s > 0:
            return SUPERVISE_EVERY_S
        for s in self.streams:
            if s.stream is None or s.opening:
                return SUPERVISE_EVERY_S
        return SUPERVISE_STEADY_S

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
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
        w = self._watch
        if w is not None and w.poll() is None:
            return  # checked first: the PATH search below is a dozen stat() calls a tick
        if self.settings.device_check_s <= 0 or shutil.which("pactl") is None:
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
                    self._poke.set()

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
        while True:
            self._poke.wait(self.interval())
            self._poke.clear()
            if self._stop.is_set():
                return
            try:
                self.tick(time.monotonic())
            except Exception as exc:  # never let the supervisor die
                self.events.put(DeviceEvent(DeviceEventKind.SUPERVISOR_ERROR, "", "",
                                            _one_line(exc)))

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
            self._stale_backoff = STALE_LIST_RESCAN_MIN_S
            return
        if len(down) == len(self.streams) and self._rescan_needed:
            self._rescan()
            self._stale_next = now + self._stale_backoff
        unlisted = self._reopen(down, now)
        running = any(s.stream is not None for s in self.streams)
        if unlisted and running and self._list_stale(now):
            self._rescan_running(unlisted, now)

    def _reopen(self, down: list[CaptureStream], now: float) -> list[CaptureStream]:
        """Try the streams whose retry is due; those whose device is not in PortAudio's list."""
        unlisted = []
        for s in down:
            if now < s.next_retry:
                continue
            try:
                s.open(self._sd)
            except Exception as exc:
                s.lost_reason = f"{s.lost_reason.split(';')[0]}; reopen failed: {_one_line(exc)}"
                s.next_retry = now + s.backoff
                s.backoff = min(s.backoff * 2, self.settings.retry_max_s)
                s.unlisted = isinstance(exc, DeviceNotListed)
                if s.unlisted:
                    unlisted.append(s)
                self._rescan_needed = True
            else:
                s.unlisted = False
        return unlisted

    def _list_stale(self, now: float) -> bool:
        """Whether PortAudio's list may lack a device that is there now: the server's sources
        changed since it was read, or the backoff since the last reading ran out. (pactl costs
        a few ms; this runs at most once per failed retry of an unlisted device.)"""
        current = pulse_sources()
        if current is not None and frozenset(current) != self._sources_seen:
            return True
        return now >= self._stale_next

    def _rescan(self) -> None:
        """PortAudio's device list is read once; re-read it. This closes every stream: the
        caller has closed ours (or they are all down)."""
        current = pulse_sources()
        self._sources_seen = frozenset(current) if current is not None else None
        sd = self._sd
        with contextlib.suppress(Exception):
            sd._terminate()
        with contextlib.suppress(Exception):
            sd._initialize()
        self._rescan_needed = False

    def _rescan_running(self, unlisted: list[CaptureStream], now: float) -> None:
        """Re-read the device list for the streams that cannot find their device, reopening
        the running ones at once (quietly: the same device, a fraction of a second of audio)."""
        running = [s for s in self.streams if s.stream is not None]
        for s in running:
            s.close()
        self._rescan()
        self._stale_next = now + self._stale_backoff
        self._stale_backoff = min(self._stale_backoff * 2, STALE_LIST_RESCAN_MAX_S)
        for s in running:
            try:
                s.open(self._sd)
            except Exception as exc:
                self._mark_lost(s, f"reopen after re-reading the device list failed: "
                                   f"{_one_line(exc)}", now, announce=True)
                self._rescan_needed = True
        for s in unlisted:
            s.next_retry = now
        self._reopen(unlisted, now)
        self.events.put(DeviceEvent(
            DeviceEventKind.DEVICES_RESCANNED, "", "", "a device was missing from the device list",
            data={"reopened": [s.name for s in running],
                  "missing": [s.name for s in unlisted],
                  "found": [s.name for s in unlisted if s.stream is not None]}))

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
            self.events.put(DeviceEvent(DeviceEventKind.DEVICE_LOST, s.name, _label(s), reason))

    def _mark_up(self, s: CaptureStream, now: float) -> None:
        s.opening = False
        s.up = True
        s.health.device_up = True
        if s.lost_at is None:
            if not s.announced:
                s.announced = True
                self.events.put(DeviceEvent(DeviceEventKind.DEVICE_UP, s.name, _label(s)))
        else:
            s.health.restarts += 1
            down = now - s.lost_at
            s.lost_at = None
            s.backoff = self.settings.retry_min_s
            self.events.put(DeviceEvent(DeviceEventKind.DEVICE_RESTORED, s.name, _label(s),
                                        s.lost_reason, down_s=down,
                                        restarts=s.health.restarts))


def _label(s: CaptureStream) -> str:
    return s.choice.label if s.choice is not None else str(s.spec)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
