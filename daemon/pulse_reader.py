"""A libpulse record stream that copies its audio into an :class:`daemon.epoch.Epoch` ring:
the native capture backend's moving part (:mod:`daemon.pulse_capture` opens it on the chosen
source and watches it).

No thread of its own: the processing loop drives it (:meth:`PulseInputStream.pump` at every
tick of the shared grid, :meth:`PulseInputStream.sleep_until` while it waits for the next).
Reading follows the callback rules of the live path all the same: peek, copy into the
preallocated ring, drop; no logging. Named sources are opened with ``DONT_MOVE``, so an
unplugged headset ends the stream instead of moving it silently to another device.
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Any

import numpy as np

from daemon import pulse_libpulse as pa
from daemon.epoch import Epoch
from daemon.pulse_streams import PulseUnavailable, proplist

STREAM_READY_TIMEOUT_S = 3.0
STAGE_FRAMES = 16384
"""Frames gathered before one write into the ring (more than a second at 16 kHz)."""

STAMP_EVERY_S = 0.5
"""How often a stream's capture time is taken (the clock fit needs a point now and then, not
one per block: see :class:`dsp.align.StreamClock`)."""

STAMP_FIRST = 6
STAMP_FIRST_EVERY_S = 0.1
"""The first :data:`STAMP_FIRST` capture times of a stream come this often: the fit's offset
needs a few points by the first half second, when one late point would otherwise place the
whole first second."""

DISPATCH_MAX = 1000
"""Bound on the events run per tick (a server flooding the socket cannot hold the thread)."""

SIZE_ERROR = 2**63
"""``pa_stream_readable_size`` returns ``(size_t) -1`` on error."""

_memmove = ctypes.PyDLL(None).memmove
"""libc's memmove keeping the interpreter lock (``ctypes.memmove`` releases and retakes it
for every packet; see :func:`daemon.pulse_libpulse.libpulse_held`)."""
_memmove.restype = ctypes.c_void_p
_memmove.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]


class PulseStreamError(OSError):
    """A record stream that could not be created (the message says why, in plain words)."""


class PulseInputStream:
    """One libpulse record stream on its own connection, writing into an :class:`Epoch`,
    driven by the processing loop.

    Why no reader thread: on a shared 2-vCPU desktop a thread that wakes pays for a cold
    cache each time, whatever little it then does (a 40 ms block costs the pipeline about
    the same as a 20 ms one after a sleep). Two reader threads and the loop woke once per
    block each; now only the loop wakes, takes both streams' audio and processes it at
    once. The server keeps what the loop has not yet taken (a record stream's buffer holds
    seconds), so a slow pass loses nothing.

    The stream runs a plain ``pa_mainloop`` of its own. At each tick :meth:`pump` runs what
    libpulse has pending and copies everything readable into the ring; now and then the
    loop sleeps in :meth:`sleep_until` instead of its own wait, to time the stream by the
    arrival of a packet. Nothing calls into Python per server packet.

    The attributes the supervisor reads (``active``, ``latency``) mirror a PortAudio stream's,
    so the supervisor treats both alike. :meth:`close` is safe from any thread: a lock keeps
    it from tearing the stream down under the loop.
    """

    def __init__(self, device: str | None, rate: int, block_frames: int, epoch: Epoch,
                 props: dict[str, str], dont_move: bool,
                 monitor_stream: int | None = None, watch_apps: bool = False) -> None:
        self.device = device
        self.watch_apps = watch_apps
        self.apps_changed = False
        """A playback stream appeared, changed or ended on the server (``watch_apps``)."""
        self.rate = rate
        self.block_frames = block_frames
        self.epoch = epoch
        self.props = props
        self.dont_move = dont_move
        self.monitor_stream = monitor_stream
        self.lib = pa.libpulse()
        self.held = pa.libpulse_held()
        """The calls that never wait, without releasing the interpreter lock."""
        self.ml: Any = None
        self.ctx: Any = None
        self.stream: Any = None
        self.context_state = 0
        self.state = 0
        self.ever_ready = False
        self.suspended = False
        self.moved_to: str | None = None
        self.error = ""
        """A fault found while reading (kept short; the supervisor reports it)."""
        self.latency = block_frames / rate
        self._fragment_bytes = block_frames * 4
        self._lock = threading.Lock()
        """Held by whoever touches the main loop: the loop's pump and sleep, or close."""
        self._closed = False
        self.pumped_at = 0.0
        """When the processing loop last took the stream's audio (a loop busy elsewhere is
        not a stalled source)."""
        self.next_stamp = 0.0
        """When the stream's capture time is next due (:meth:`sleep_until`)."""
        self._stamps = 0
        self._cbs: list[Any] = []
        self._ptr = ctypes.c_void_p()
        self._nbytes = ctypes.c_size_t()
        self._ptr_ref = ctypes.byref(self._ptr)
        self._nbytes_ref = ctypes.byref(self._nbytes)
        self._stage = np.zeros(max(STAGE_FRAMES, 4 * block_frames), np.float32)
        """One block (or a late reader's several) gathered from the server's packets, so the
        ring gets one write per block."""

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect, create the stream and wait until it records (PulseUnavailable or
        PulseStreamError, in plain words); from then on the processing loop drives the main
        loop (:meth:`pump`, :meth:`sleep_until`)."""
        lib = self.lib
        self.ml = lib.pa_mainloop_new()
        self._cbs = [pa.CONTEXT_NOTIFY_CB(self._on_context), pa.STREAM_NOTIFY_CB(self._on_state),
                     pa.STREAM_NOTIFY_CB(self._on_suspended), pa.STREAM_NOTIFY_CB(self._on_moved),
                     pa.SUBSCRIBE_CB(self._on_event)]
        pl = proplist({"application.name": "callwatch", **self.props})
        try:
            self.ctx = lib.pa_context_new_with_proplist(
                lib.pa_mainloop_get_api(self.ml),
                f"callwatch-{self.props.get('callwatch.stream', 'capture')}".encode(), pl)
            lib.pa_context_set_state_callback(self.ctx, self._cbs[0], None)
            if lib.pa_context_connect(self.ctx, None, pa.PA_CONTEXT_NOAUTOSPAWN, None) < 0:
                raise PulseUnavailable(self._why("no sound server answers"))
            self._iterate_until(lambda: self.context_state in (
                pa.CONTEXT_READY, pa.CONTEXT_FAILED, pa.CONTEXT_TERMINATED))
            if self.context_state != pa.CONTEXT_READY:
                raise PulseUnavailable(self._why("no sound server answers"))
            if self.watch_apps:
                lib.pa_context_set_subscribe_callback(self.ctx, self._cbs[4], None)
                op = lib.pa_context_subscribe(self.ctx, pa.SUBSCRIPTION_MASK_SINK_INPUT,
                                              pa.SUCCESS_CB(), None)
                if op:
                    lib.pa_operation_unref(op)
            ss = pa.SampleSpec(pa.PA_SAMPLE_FLOAT32LE, self.rate, 1)
            s = lib.pa_stream_new_with_proplist(self.ctx, b"capture", ctypes.byref(ss), None, pl)
        except BaseException:
            self._teardown()
            raise
        finally:
            lib.pa_proplist_free(pl)
        if not s:
            why = self._why("cannot create a record stream")
            self._teardown()
            raise PulseStreamError(why)
        self.stream = s
        lib.pa_stream_set_state_callback(s, self._cbs[1], None)
        lib.pa_stream_set_suspended_callback(s, self._cbs[2], None)
        lib.pa_stream_set_moved_callback(s, self._cbs[3], None)
        if self.monitor_stream is not None:
            lib.pa_stream_set_monitor_stream(s, self.monitor_stream)
        attr = pa.BufferAttr(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
                             self._fragment_bytes)
        flags = pa.STREAM_ADJUST_LATENCY | (pa.STREAM_DONT_MOVE if self.dont_move else 0)
        dev = self.device.encode() if self.device else None
        if lib.pa_stream_connect_record(s, dev, ctypes.byref(attr), flags) < 0:
            why = self._why(f"cannot record from {self._name()}")
            self._teardown()
            raise PulseStreamError(why)
        self._iterate_until(lambda: self.state in (
            pa.STREAM_READY, pa.STREAM_FAILED, pa.STREAM_TERMINATED)
            or self.context_state != pa.CONTEXT_READY)
        if self.state != pa.STREAM_READY:
            why = self._why(f"cannot record from {self._name()}")
            self._teardown()
            raise PulseStreamError(why)
        self.suspended = bool(lib.pa_stream_is_suspended(s))
        ba = lib.pa_stream_get_buffer_attr(s)
        if ba:
            self._fragment_bytes = max(4, min(self._fragment_bytes, int(ba[0].fragsize)))
            self.latency = self._fragment_bytes / 4 / self.rate
        self.epoch.grid_s = self.block_frames / self.rate
        self.pumped_at = time.monotonic()

    def _iterate_until(self, done: Any) -> None:
        """Run the main loop on this thread until ``done()`` or the start-up timeout."""
        deadline = time.monotonic() + STREAM_READY_TIMEOUT_S
        while not done() and time.monotonic() < deadline:
            if self.lib.pa_mainloop_iterate(self.ml, 0, None) < 0:
                break
            if not done():
                time.sleep(0.002)

    def pump(self) -> None:
        """The processing loop, once per tick: run what libpulse has pending (the packets the
        server sent since the last tick, state changes) and copy everything readable into the
        ring. Never waits: a stream being closed on another thread is skipped."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            s, ep = self.stream, self.epoch
            if s is None or self._closed or ep.finished:
                return
            self.pumped_at = time.monotonic()
            n = self._readable(s) if self._dispatch() else -1
            if n < 0:
                ep.finished = True
            elif n:
                self._read(s)
        except Exception as exc:  # a bug must not kill the processing loop
            self._fail(exc)
        finally:
            self._lock.release()

    def sleep_until(self, until: float) -> None:
        """Sleep until ``until`` (host monotonic time) in this stream's main loop, and note the
        capture time of its newest sample when a packet arrives meanwhile: the server pushes
        each source period as soon as it is recorded, so the arrival of a burst of packets is
        the capture time of its last sample. The audio stays readable for the next
        :meth:`pump`. Returns early only when the stream ends or is closed.

        (libpulse's own latency estimate was tried and drifts by ~10 ms over the first seconds
        on a remapped source, which moves one party against the other early in a call.)
        Reading at ticks cannot time a block itself: its newest packet arrived at some moment
        since the last tick."""
        if not self._lock.acquire(timeout=max(0.0, until - time.monotonic())):
            return
        try:
            lib, ml, s, ep = self.lib, self.ml, self.stream, self.epoch
            if s is None or self._closed or ep.finished:
                return
            # Packets that came while the loop was elsewhere are taken first: only one that
            # arrives while it waits here is timed (an older one would be stamped late).
            before = self._readable(s) if self._dispatch() else -1
            while before >= 0:
                left = until - time.monotonic()
                if left <= 0:
                    return
                if (lib.pa_mainloop_prepare(ml, int(left * 1e6)) < 0
                        or lib.pa_mainloop_poll(ml) < 0 or lib.pa_mainloop_dispatch(ml) < 0):
                    break
                n = self._readable(s)
                if n > before:
                    # The server sends a period in a burst of packets: take the whole
                    # burst, so the newest sample is the one captured about now.
                    if not self._dispatch():
                        break
                    t = time.monotonic()
                    n = self._readable(s)
                    if n < 0:
                        break
                    ep.mark(ep.n_seen + n // 4, t)
                    self._stamps += 1
                    self.next_stamp = t + (STAMP_FIRST_EVERY_S if self._stamps < STAMP_FIRST
                                           else STAMP_EVERY_S)
                    return
                before = n
            ep.finished = True
        except Exception as exc:
            self._fail(exc)
        finally:
            self._lock.release()

    def _fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"[:200]
        self.epoch.finished = True

    def _readable(self, s: int) -> int:
        """Bytes readable now; -1 when the stream is gone (libpulse returns (size_t) -1)."""
        n = self.held.pa_stream_readable_size(s)
        return -1 if n >= SIZE_ERROR else int(n)

    def _dispatch(self) -> bool:
        """Run what libpulse has pending (the packets the server sent since the last tick,
        state changes), without blocking; False when the main loop has quit."""
        iterate, ml = self.held.pa_mainloop_iterate, self.ml
        for _ in range(DISPATCH_MAX):
            r = iterate(ml, 0, None)
            if r < 0:
                return False
            if r == 0:
                return True
        return True

    def _name(self) -> str:
        return self.device or "the default source"

    def _why(self, what: str) -> str:
        if not self.ctx:
            return what
        code = self.lib.pa_context_errno(self.ctx)
        if code == pa.ERR_NOENTITY:
            return f"{what}: no such source"
        return f"{what}: {pa.strerror(code)}" if code else what

    @property
    def active(self) -> bool:
        return (self.state == pa.STREAM_READY and self.context_state == pa.CONTEXT_READY
                and not self.epoch.finished)

    @property
    def connection_lost(self) -> bool:
        return self.ever_ready and self.context_state in (pa.CONTEXT_FAILED,
                                                          pa.CONTEXT_TERMINATED)

    def abort(self) -> None:
        self.close()

    def close(self) -> None:
        """Free everything; from any thread. A loop asleep in :meth:`sleep_until` is woken
        first; a loop stuck inside libpulse for seconds keeps the objects (never freed under
        it)."""
        self._closed = True
        self.epoch.finished = True
        ml = self.ml
        if ml:
            self.lib.pa_mainloop_wakeup(ml)
        if not self._lock.acquire(timeout=2.0):
            return
        try:
            self._teardown()
        finally:
            self._lock.release()

    def _teardown(self) -> None:
        lib, s, ctx, ml = self.lib, self.stream, self.ctx, self.ml
        self.stream = self.ctx = self.ml = None
        if s:
            lib.pa_stream_set_state_callback(s, pa.STREAM_NOTIFY_CB(), None)
            lib.pa_stream_disconnect(s)
            lib.pa_stream_unref(s)
        if ctx:
            pa.release_context(lib, ctx)
        if ml:
            lib.pa_mainloop_free(ml)

    # -- callbacks (on the thread running the main loop: start(), then the processing loop) --

    def _on_context(self, c: int, _ud: int) -> None:
        self.context_state = self.lib.pa_context_get_state(c)
        if self.context_state == pa.CONTEXT_READY:
            self.ever_ready = True
        elif self.context_state in (pa.CONTEXT_FAILED, pa.CONTEXT_TERMINATED) \
                and self.ever_ready:
            self.epoch.finished = True

    def _on_state(self, s: int, _ud: int) -> None:
        self.state = self.lib.pa_stream_get_state(s)
        if self.state in (pa.STREAM_FAILED, pa.STREAM_TERMINATED):
            self.epoch.finished = True

    def _on_suspended(self, s: int, _ud: int) -> None:
        self.suspended = bool(self.lib.pa_stream_is_suspended(s))

    def _on_event(self, _c: int, kind: int, _idx: int, _ud: int) -> None:
        if kind & pa.SUBSCRIPTION_EVENT_FACILITY_MASK == pa.SUBSCRIPTION_EVENT_SINK_INPUT:
            self.apps_changed = True

    def _on_moved(self, s: int, _ud: int) -> None:
        self.moved_to = pa.text(self.lib.pa_stream_get_device_name(s))

    def _read(self, s: int) -> None:
        """Copy everything readable into the ring. Nothing else: no lock of ours, no logging,
        no array allocation.

        Every packet the server sent since the last tick is gathered into one staging buffer,
        then written at once: one ring write per block, whatever the source's period. Its
        timing comes from the marks of :meth:`sleep_until`."""
        held = self.held
        peek, drop = held.pa_stream_peek, held.pa_stream_drop
        pref, nref = self._ptr_ref, self._nbytes_ref
        ep = self.epoch
        stage = self._stage
        base = stage.ctypes.data
        n = 0
        while peek(s, pref, nref) == 0:
            nbytes = self._nbytes.value
            if nbytes == 0:
                break
            ptr = self._ptr.value
            if ptr is None:  # a hole: the server lost data; keep the timeline with silence
                ep.overflows += 1
            done, frames = 0, nbytes // 4
            while done < frames:
                if n == len(stage):
                    ep.push(stage, None)
                    n = 0
                k = min(frames - done, len(stage) - n)
                if ptr is None:
                    stage[n:n + k] = 0.0
                else:
                    _memmove(base + 4 * n, ptr + 4 * done, 4 * k)
                n += k
                done += k
            drop(s)
        if n:
            ep.push(stage[:n], None)
