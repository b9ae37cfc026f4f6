"""Native PulseAudio/PipeWire capture: a libpulse record stream per device, feeding the same
rings (:class:`daemon.epoch.Epoch`) and watched by the same supervisor as PortAudio streams.

Why: through PortAudio the audio goes PortAudio -> ALSA ``pulse`` plugin -> libpulse, with
small fragments and a polling thread in between; that path costs several times what the
sound server itself spends. The record stream, which the processing loop reads, lives in
:mod:`daemon.pulse_reader`; this module chooses the backend, resolves the configured device
(or the far-end application) on the server, opens the stream, and tells its faults apart.

Faults are told apart where the server tells them apart, in words an agent's IT can act on:

* the stream killed by the server, or its source removed: named sources are opened with
  ``DONT_MOVE``, so an unplugged headset ends the stream instead of moving it silently to
  another device; whether the source still exists tells the two apart;
* the server stopped or restarted: the connection itself fails;
* a suspended source: libpulse's suspended notification, and the stall watchdog behind it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from daemon.capture import CaptureStream
from daemon.config import CaptureSettings
from daemon.device_choice import DeviceChoice, DeviceError
from daemon.epoch import Epoch
from daemon.pulse_reader import PulseInputStream
from daemon.pulse_streams import (
    PlayingApp,
    PulseUnavailable,
    find_app,
    resolve_source,
    server_view,
)


@dataclass(frozen=True, slots=True)
class AppChoice(DeviceChoice):
    """The far end narrowed to one application (or its fallback): the label says which."""

    note: str = ""

    @property
    def label(self) -> str:
        return f"{DeviceChoice.label.fget(self)} ({self.note})"  # type: ignore[attr-defined]


class PulseCaptureStream(CaptureStream):
    """A :class:`CaptureStream` recorded through libpulse instead of PortAudio.

    With ``[capture] far_end_app`` the far end records only that application's playback
    stream (a record stream on its sink's monitor with ``monitor-stream`` set to it), so
    notification sounds and other players on the same sink are not taken for the customer.
    While the application plays nothing the far end falls back to ``far_end_device`` and says
    so in its label; a stream appearing, moving to another sink or ending reopens the far end
    (``device_lost`` / ``device_restored`` with the reason).
    """

    app: PlayingApp | None = None
    """The application stream being recorded (None: on the fallback, or not narrowed)."""

    def open(self, sd: Any) -> None:
        """Resolve the spec on the server and start a record stream (DeviceError,
        PulseUnavailable or PulseStreamError)."""
        app_name = self.settings.far_end_app.strip() if self.role == "far end" else ""
        view = server_view(apps=bool(app_name))
        app = find_app(view, app_name) if app_name else None
        choice: DeviceChoice
        if app is not None:
            monitor = f"{app.sink}.monitor"
            choice = AppChoice(f"app:{app_name}", app.index, monitor, pulse_source=monitor,
                               note=f"{app_name} only")
        else:
            choice = resolve_source(view, self.spec, self.role, self.key)
            if app_name:
                choice = AppChoice(choice.spec, choice.index, choice.name, choice.pulse_source,
                                   note=f"{app_name} plays nothing: everything the sink plays")
        rate = self.settings.samplerate_hz
        if not rate:
            src = view.source(choice.name)
            rate = src.rate if src is not None and src.rate else 48000
        blocksize = max(1, round(self.settings.block_s * rate))
        # No wake-up: the processing loop reads the stream itself, on the tick grid.
        epoch = Epoch(max(blocksize * 4, round(self.settings.ring_s * rate)), rate)
        follow_default = choice.spec == "default"
        stream = PulseInputStream(
            None if follow_default else choice.name, rate, blocksize, epoch,
            {"callwatch.stream": self.name, "application.name": "callwatch",
             "media.role": "production"},
            dont_move=not follow_default,
            monitor_stream=app.index if app is not None else None,
            watch_apps=bool(app_name))
        stream.start()
        epoch.latency_s = stream.latency
        epoch.opened_at = time.monotonic()
        self.stream, self.choice, self.rate = stream, choice, rate
        self.app = app
        self.source = None
        self.epoch = epoch
        self.opening = True
        self.health.device_name = choice.label

    def pump(self) -> None:
        s = self.stream
        if s is not None:
            s.pump()

    def _app_fault(self, ended: bool) -> str | None:
        """What happened to the far-end application's stream, if that is the fault."""
        app_name = self.settings.far_end_app.strip()
        s = self.stream
        if not app_name or self.role != "far end" or s is None:
            return None
        if not ended:
            if self.app is not None or not s.apps_changed:
                return None
            s.apps_changed = False
        try:
            now = find_app(server_view(apps=True), app_name)
        except (PulseUnavailable, OSError):
            return None
        was = self.app
        if was is None:
            return (f"{app_name} started playing on {now.sink}: recording its stream only"
                    if now is not None else None)
        if now is None:
            return f"{app_name} stopped playing (call ended or app closed)"
        if now.sink != was.sink:
            return f"{app_name} moved from {was.sink} to {now.sink}"
        if now.index != was.index:
            return f"{app_name} replaced its playback stream"
        return None

    def fault(self, now: float) -> str | None:
        """Why the running stream is no good, in words that say what happened."""
        ep, s = self.epoch, self.stream
        if ep is None or s is None:
            return None
        if s.error:
            return f"capture failed: {s.error}"
        if s.connection_lost:
            return "lost the connection to the sound server (stopped or restarted)"
        ended = ep.finished or not s.active
        app = self._app_fault(ended)
        if app is not None:
            return app
        if ended:
            if s.device and _source_gone(s.device):
                return f"source {s.device} removed (headset unplugged or its module unloaded)"
            return "stream ended by the sound server"
        if s.moved_to and s.device is None and self.source and s.moved_to != self.source:
            return f"the default source changed from {self.source} to {s.moved_to}"
        since = ep.last_callback if ep.callbacks else ep.opened_at
        limit = self.settings.stall_timeout_s + (0.0 if ep.callbacks else 2.5)
        # Only the processing loop reads the stream: while it is busy elsewhere (a reload, a
        # call's summary), silence from the source proves nothing.
        if min(now, s.pumped_at) - since > limit:
            quiet = f"no audio for {now - since:.1f} s"
            name = s.device or (self.choice.name if self.choice is not None else "")
            held = "" if s.suspended else _suspended_under(name)
            if s.suspended or held == name:
                return f"source suspended by the sound server ({quiet})"
            if held:
                return f"source suspended by the sound server: {held} ({quiet})"
            return f"{quiet} from the source (stalled)"
        return None


def _source_gone(name: str) -> bool:
    try:
        return server_view().source(name) is None
    except (PulseUnavailable, OSError):
        return False


def _suspended_under(name: str) -> str:
    """The suspended source under ``name`` (itself or its master), or ""."""
    try:
        return server_view().suspended(name) or ""
    except (PulseUnavailable, OSError):
        return ""


class PulseBackend:
    """Stands where the supervisor expects the ``sounddevice`` module: libpulse has no device
    list to re-read (every opening asks the server afresh), so a rescan is nothing."""

    name = "pulse"

    def _terminate(self) -> None:
        pass

    def _initialize(self) -> None:
        pass


def choose_backend(cap: CaptureSettings) -> tuple[str, str]:
    """``(backend, why)`` for ``[capture] backend``: ``auto`` takes pulse when a sound server
    answers and neither device is a PortAudio index; ``pulse`` without a server is an error."""
    app = cap.far_end_app.strip()
    if cap.backend == "portaudio":
        if app:
            raise DeviceError(f"[capture] far_end_app = \"{app}\" needs backend = \"pulse\" "
                              "(or \"auto\" with PulseAudio or PipeWire running); remove "
                              "far_end_app to use PortAudio")
        return "portaudio", "configured"
    indexed = [k for k, v in (("mic_device", cap.mic_device),
                              ("far_end_device", cap.far_end_device))
               if isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit())]
    try:
        server_view()
    except PulseUnavailable as exc:
        if cap.backend == "pulse" or app:
            what = f"far_end_app = \"{app}\"" if app and cap.backend != "pulse" \
                else "backend = \"pulse\""
            raise DeviceError(f"[capture] {what}: {exc}; start PulseAudio or PipeWire, or set "
                              "backend = \"portaudio\"" + (" without far_end_app" if app else "")
                              ) from None
        return "portaudio", f"pulse unavailable: {exc}"
    if cap.backend == "pulse":
        return "pulse", "configured"
    if indexed and not app:
        return "portaudio", f"{', '.join(indexed)} is a PortAudio device index"
    return "pulse", "a sound server answers"
