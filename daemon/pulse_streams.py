"""What a PulseAudio/PipeWire server offers to record: its sources, its default devices and the
applications playing, read through libpulse (no ``pactl`` needed), and the device specs of the
config resolved against them.

Device specs mean what they mean for PortAudio (``pulse:SOURCE``, ``default``, part of a name,
``""`` for the far end = the monitor of the default sink), matched here against the server's
source names and descriptions. Matching ignores case and treats ``_``, ``.``, ``-`` and spaces
alike, so the ALSA PCM names people already have in their configs (``speaker_monitor`` for
``headset_speaker.monitor``) still find their source. Device indices are PortAudio's and are
left to that backend.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from daemon import pulse_libpulse as pa
from daemon.device_choice import DeviceChoice, DeviceError

CONNECT_TIMEOUT_S = 3.0
QUERY_TIMEOUT_S = 3.0


class PulseUnavailable(OSError):
    """No PulseAudio-compatible server answers (or libpulse is missing)."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    index: int
    description: str
    rate: int
    monitor: bool
    suspended: bool = False
    master: str = ""
    """The source a virtual source (remap, echo-cancel) records from."""


@dataclass(frozen=True, slots=True)
class PlayingApp:
    """A playback stream (sink input): what the far end can be narrowed to."""

    index: int
    sink: str
    application: str
    binary: str
    media: str


@dataclass(frozen=True, slots=True)
class ServerView:
    """One reading of the server: enough to resolve every device spec."""

    default_sink: str
    default_source: str
    sources: tuple[Source, ...]
    apps: tuple[PlayingApp, ...] = ()

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)

    def suspended(self, name: str) -> str | None:
        """The source, or the source under it (a remap's master), that is suspended."""
        seen: set[str] = set()
        src = self.source(name)
        while src is not None and src.name not in seen:
            if src.suspended:
                return src.name
            seen.add(src.name)
            src = self.source(src.master) if src.master else None
        return None


class Connection:
    """A libpulse context on its own threaded main loop.

    Callbacks run on the main loop's thread with its lock held; calls from other threads take
    the lock (:meth:`locked`). :meth:`close` stops the thread before freeing anything, so no
    callback can run on freed objects.
    """

    def __init__(self, name: str, props: dict[str, str] | None = None,
                 timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.lib = lib = pa.libpulse()
        self.ml = lib.pa_threaded_mainloop_new()
        self.ctx: Any = None
        self.state = 0
        self.failed = threading.Event()
        """The connection was lost (server stopped or restarted) after being ready."""
        self._ready = threading.Event()
        self._stopped = False
        self._keep: list[Any] = []  # C callbacks must outlive the main loop
        pl = proplist({"application.name": "callwatch", **(props or {})})
        try:
            self.ctx = lib.pa_context_new_with_proplist(
                lib.pa_threaded_mainloop_get_api(self.ml), name.encode(), pl)
        finally:
            lib.pa_proplist_free(pl)
        cb = pa.CONTEXT_NOTIFY_CB(self._on_state)
        self._keep.append(cb)
        lib.pa_context_set_state_callback(self.ctx, cb, None)
        if lib.pa_context_connect(self.ctx, None, pa.PA_CONTEXT_NOAUTOSPAWN, None) < 0:
            why = pa.strerror(lib.pa_context_errno(self.ctx))
            self.close()
            raise PulseUnavailable(f"no sound server answers ({why})")
        lib.pa_threaded_mainloop_start(self.ml)
        if not self._ready.wait(timeout_s) or self.state != pa.CONTEXT_READY:
            why = (pa.strerror(lib.pa_context_errno(self.ctx)) if self.state
                   else "no answer in time")
            self.close()
            raise PulseUnavailable(f"no sound server answers ({why})")

    def _on_state(self, c: int, _ud: int) -> None:
        self.state = self.lib.pa_context_get_state(c)
        if self.state == pa.CONTEXT_READY:
            self._ready.set()
        elif self.state in (pa.CONTEXT_FAILED, pa.CONTEXT_TERMINATED):
            if self._ready.is_set():
                self.failed.set()
            self._ready.set()
        if self.ml:
            self.lib.pa_threaded_mainloop_signal(self.ml, 0)

    def locked(self) -> _Lock:
        return _Lock(self)

    def run(self, start: Any, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        """Start an operation (``start()`` returns a ``pa_operation*``, called with the lock
        held) and wait until it is done; :class:`PulseUnavailable` if the server goes away."""
        lib = self.lib
        deadline = time.monotonic() + timeout_s
        with self.locked():
            op = start()
            if not op:
                raise PulseUnavailable(
                    f"sound server query failed ({pa.strerror(lib.pa_context_errno(self.ctx))})")
            try:
                while lib.pa_operation_get_state(op) == pa.OPERATION_RUNNING:
                    if self.state != pa.CONTEXT_READY or time.monotonic() > deadline:
                        raise PulseUnavailable("the sound server stopped answering")
                    lib.pa_threaded_mainloop_wait(self.ml)
            finally:
                lib.pa_operation_unref(op)

    def stop_thread(self) -> None:
        """Stop the main loop's thread (once); no callback runs after this returns."""
        if self.ml and not self._stopped:
            self._stopped = True
            self.lib.pa_threaded_mainloop_stop(self.ml)

    def close(self) -> None:
        self.stop_thread()
        lib, ml, ctx = self.lib, self.ml, self.ctx
        self.ml = self.ctx = None
        if ctx:
            pa.release_context(lib, ctx)
        if ml:
            lib.pa_threaded_mainloop_free(ml)


class _Lock:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __enter__(self) -> Connection:
        self.conn.lib.pa_threaded_mainloop_lock(self.conn.ml)
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.conn.lib.pa_threaded_mainloop_unlock(self.conn.ml)


def proplist(props: dict[str, str]) -> Any:
    """A new ``pa_proplist*`` (the caller frees it)."""
    lib = pa.libpulse()
    pl = lib.pa_proplist_new()
    for k, v in props.items():
        lib.pa_proplist_sets(pl, k.encode(), v.encode())
    return pl


def read_server(conn: Connection, apps: bool = False) -> ServerView:
    """Default devices, sources and (``apps``) the playback streams of a connected server."""
    lib = conn.lib
    info: dict[str, str] = {}
    sources: list[Source] = []
    sinks: dict[int, str] = {}
    playing: list[PlayingApp] = []

    def on_server(_c: int, i: Any, _ud: int) -> None:
        if i:
            info["sink"] = pa.text(i[0].default_sink_name)
            info["source"] = pa.text(i[0].default_source_name)
        lib.pa_threaded_mainloop_signal(conn.ml, 0)

    def on_source(_c: int, i: Any, eol: int, _ud: int) -> None:
        if eol or not i:
            lib.pa_threaded_mainloop_signal(conn.ml, 0)
            return
        s = i[0]
        master = lib.pa_proplist_gets(s.proplist, b"device.master_device") if s.proplist else None
        sources.append(Source(pa.text(s.name), int(s.index), pa.text(s.description),
                              int(s.sample_spec.rate),
                              s.monitor_of_sink != pa.PA_INVALID_INDEX,
                              s.state == pa.SOURCE_SUSPENDED, pa.text(master)))

    def on_sink(_c: int, i: Any, eol: int, _ud: int) -> None:
        if eol or not i:
            lib.pa_threaded_mainloop_signal(conn.ml, 0)
            return
        sinks[int(i[0].index)] = pa.text(i[0].name)

    def on_input(_c: int, i: Any, eol: int, _ud: int) -> None:
        if eol or not i:
            lib.pa_threaded_mainloop_signal(conn.ml, 0)
            return
        s = i[0]

        def prop(key: str) -> str:
            return pa.text(lib.pa_proplist_gets(s.proplist, key.encode())) if s.proplist else ""

        playing.append(PlayingApp(int(s.index), str(int(s.sink)),
                                  prop("application.name"),
                                  prop("application.process.binary"),
                                  prop("media.name") or pa.text(s.name)))

    cbs = [pa.SERVER_INFO_CB(on_server), pa.SOURCE_INFO_CB(on_source)]
    conn.run(lambda: lib.pa_context_get_server_info(conn.ctx, cbs[0], None))
    conn.run(lambda: lib.pa_context_get_source_info_list(conn.ctx, cbs[1], None))
    if apps:
        cbs += [pa.SINK_INFO_CB(on_sink), pa.SINK_INPUT_INFO_CB(on_input)]
        conn.run(lambda: lib.pa_context_get_sink_info_list(conn.ctx, cbs[2], None))
        conn.run(lambda: lib.pa_context_get_sink_input_info_list(conn.ctx, cbs[3], None))
        playing = [PlayingApp(p.index, sinks.get(int(p.sink), p.sink), p.application,
                              p.binary, p.media) for p in playing]
    return ServerView(info.get("sink", ""), info.get("source", ""), tuple(sources),
                      tuple(playing))


def server_view(apps: bool = False) -> ServerView:
    """Connect, read the server, disconnect; :class:`PulseUnavailable` without a server."""
    try:
        conn = Connection("callwatch-query")
    except pa.LibPulseMissing as exc:
        raise PulseUnavailable(str(exc)) from None
    try:
        return read_server(conn, apps)
    finally:
        conn.close()


# -- device specs ---------------------------------------------------------------------------


def _fold(s: str) -> str:
    """Case and separators folded: ``speaker_monitor`` ~ ``Headset.Speaker-Monitor``."""
    return re.sub(r"[\s._\-]+", " ", s.lower()).strip()


def resolve_source(view: ServerView, spec: str | int, role: str, key: str) -> DeviceChoice:
    """A config device spec -> a source of this server, or :class:`DeviceError` naming the
    sources there are. ``DeviceChoice.name`` is the source to record; ``pulse_source`` is set
    only for ``pulse:`` specs and the far end's default, so labels read as the user wrote them.
    """
    where = f"[capture] {key} = {json.dumps(spec)}"
    names = ", ".join(f'"{s.name}"' for s in view.sources) or "none"
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        raise DeviceError(f"{where}: device indices are PortAudio's; with the pulse backend "
                          f"use a source name (sources: {names}), or set [capture] backend = "
                          "\"portaudio\"")
    spec = spec.strip()
    if spec == "" and role == "far end":
        if not view.default_sink:
            raise DeviceError(f"{where}: the sound server has no default sink to take the far "
                              f"end from; set far_end_device to a monitor source ({names})")
        mon = f"{view.default_sink}.monitor"
        src = view.source(mon)
        return DeviceChoice("", src.index if src else -1, mon, pulse_source=mon)
    if spec in ("", "default"):
        # Connected without a device name: the stream follows the server's default source.
        src = view.source(view.default_source)
        return DeviceChoice("default", src.index if src else -1,
                            view.default_source or "default")
    if spec.startswith("pulse:"):
        name = spec[len("pulse:"):]
        src = view.source(name)
        if src is None:
            raise DeviceError(f"{where}: no PulseAudio source {name!r}; sources: {names}")
        return DeviceChoice(spec, src.index, src.name, pulse_source=src.name)
    exact = [s for s in view.sources if s.name == spec]
    want = _fold(spec)
    matches = exact or [s for s in view.sources
                        if want in _fold(s.name) or want in _fold(s.description)]
    if len(matches) > 1:
        # A headset's brand names both its mic and its speaker's monitor: a short name means
        # the mic for the mic and the monitor for the far end.
        fitting = [s for s in matches if s.monitor == (role == "far end")]
        matches = fitting if len(fitting) == 1 else matches
    if len(matches) == 1:
        return DeviceChoice(spec, matches[0].index, matches[0].name)
    if not matches:
        raise DeviceError(f"{where}: no {role} source matches; sources: {names}")
    raise DeviceError(f"{where}: several sources match ({', '.join(s.name for s in matches)}); "
                      "use a longer part of the name or pulse:NAME")


def find_app(view: ServerView, app: str) -> PlayingApp | None:
    """The playback stream of ``app`` (application name or binary, case-insensitive); the
    newest when it has several."""
    want = app.strip().lower()
    hits = [p for p in view.apps if want in (p.application.lower(), p.binary.lower())]
    return max(hits, key=lambda p: p.index) if hits else None

