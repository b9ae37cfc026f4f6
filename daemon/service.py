"""The live daemon: its inputs, its endpoints and the processing loop.

Threads: PortAudio's capture callbacks (copy into rings, nothing else), the capture supervisor
(opens, watches and reopens devices), the alert server's asyncio loop, the control socket,
and this module's **processing loop**, the only place where audio becomes events and events
become log lines, alerts, WebSocket messages, metrics and call summaries. With the libpulse
backend the loop reads both streams itself, at each tick of a grid of the block length (one
thread waking per block, not three: :mod:`daemon.pulse_reader`); with PortAudio it sleeps
until a callback has stored a block (:mod:`daemon.wakeup`). Either way ``process_interval_s``
bounds a sleep with no audio. Then it:

1. applies a requested reload, serves what other threads handed over (device events from the
   supervisor, snoozes from the page, control requests);
2. runs one pass of the :class:`~daemon.monitor.Monitor` (rings -> aligned audio -> pipeline
   -> calls, alerts, log, page, metrics);
3. pings the systemd watchdog if audio was processed.

``--replay FILE`` swaps the capture streams for a paced file reader writing into the same
rings; everything after the rings is the same code. The command line around this is
:mod:`daemon.run`; the endpoints the service starts are in :mod:`daemon.endpoints`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import queue
import sys
import time
from typing import Any

from alerts.policy import AlertPolicy
from alerts.server import AlertServer
from daemon import package_version
from daemon.blas_threads import limit_blas_threads
from daemon.calls import CallTracker
from daemon.capture import CaptureStream
from daemon.check.result import LastCheckWatcher
from daemon.command import EXIT_BAD_INPUT
from daemon.config import Config, ConfigError, load_config
from daemon.control import ControlServer, Request
from daemon.device_event import DeviceEvent
from daemon.endpoints import start_alert_server, start_control, start_metrics, stop_metrics
from daemon.hearing import HearingTracker, effective_sensitivity, headset_model, load_sensitivities
from daemon.inputs import Source, open_capture, open_replay
from daemon.logjson import EventLog
from daemon.metrics import Metrics, PublishedStats
from daemon.monitor import Monitor
from daemon.notify import notify, watchdog_interval_s
from daemon.publish import Publisher
from daemon.reload import plan as reload_plan
from daemon.replay import ReplayFeeder
from daemon.state import DaemonState
from daemon.supervisor import Supervisor
from daemon.wakeup import Wakeup
from dsp import ANALYSIS_RATE
from dsp.events import Kind, Stream
from dsp.hearing import HearingSettings
from dsp.voice_confirm import confirm_available

__all__ = ["EXIT_INTERNAL_ERROR", "EXIT_OK", "Service"]

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
"""A bug ended the run (a replay thread died): the traceback is printed."""

WATCHDOG_AUDIO_S = 5.0
"""The watchdog is pinged only if audio was processed this recently (or devices are being
recovered): a wedged processing loop gets the daemon restarted by systemd."""


class Service:
    """The processing loop and everything it drives.

    :meth:`open_inputs` and :meth:`start_services` may fail (the caller reports why and
    stops what started); :meth:`run` then loops until a stop is requested or a replay ends,
    and returns the exit code.
    """

    monitor: Monitor
    """The pipeline and what follows it; built by :meth:`open_inputs`, which knows the rates."""

    def __init__(self, cfg: Config, log: EventLog, args: argparse.Namespace,
                 command: str = "run") -> None:
        """``command``: the subcommand the user typed (``run``, ``demo``), for the lines
        on stderr."""
        limit_blas_threads()  # spinning BLAS workers cost more than the whole pipeline
        self.cfg = cfg
        self.log = log
        self.args = args
        self.prog = f"callwatch {command}"
        self.state = DaemonState(agent_id=cfg.agent_id, version=package_version())
        self.out = Publisher(log, self.state)
        self.last_check = LastCheckWatcher()  # `callwatch check` results -> the metrics
        self.health = {"agent": self.state.streams[Stream.AGENT],
                       "customer": self.state.streams[Stream.CUSTOMER]}
        self.policy = AlertPolicy(cfg.alerts) if cfg.alerts is not None else None
        self.calls = CallTracker(cfg.capture)
        self.device_events: queue.SimpleQueue[DeviceEvent] = queue.SimpleQueue()
        self.requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self.snoozes: queue.SimpleQueue[tuple[Kind, float]] = queue.SimpleQueue()
        self.far_source: str | None = None
        """The sound-server source the far-end stream was last seen on (its headset's
        sensitivity is looked up by it: :meth:`_follow_far_source`)."""
        self.wake = Wakeup()
        """Set by the capture threads after each block and by signals: the loop sleeps
        until there is work."""
        self.stop_requested: str | None = None
        self.reload_requested = False
        self.server: AlertServer | None = None
        self.metrics: Metrics | None = None
        self.control: ControlServer | None = None
        self.borrowed: list[str] = []
        """Endpoints a replay took elsewhere because the configured ones are in use (by
        another callwatch, typically): the nudge page's port, the metrics port, the control
        socket."""
        self.control_borrowed = False
        self.supervisor: Supervisor | None = None
        self.backend: str | None = None
        """The capture backend ("pulse" or "portaudio") and why it was chosen (live only)."""
        self.backend_why: str | None = None
        self.feeder: ReplayFeeder | None = None
        self.sources: dict[str, Source] = {}
        self.wall0 = time.time()

    # -- setup ------------------------------------------------------------------------------

    def open_inputs(self) -> None:
        """Capture devices or the replay, and the monitor that reads them; raises
        DeviceError/AudioFileError/OSError."""
        cap = self.cfg.capture
        if self.args.replay:
            self.feeder = open_replay(self.args.replay, self.args.speed, cap, self.wake.set,
                                      self.health)
            self.sources = {"agent": self.feeder.agent, "customer": self.feeder.customer}
        else:
            capture = open_capture(cap, self.wake.set, self.health, self.device_events)
            self.supervisor = capture.supervisor
            self.backend, self.backend_why = capture.backend, capture.why
            self.sources = dict(capture.streams)
        sens, source = self._sensitivity(self.cfg.hearing)
        hearing = HearingTracker(self.cfg.hearing, dt.date.today(), sensitivity=sens,
                                 source=source, keep=not self.args.replay)
        # Scrapes read snapshots the loop publishes (the pipeline is not thread-safe); without
        # metrics the loop takes none.
        metrics_on = self.cfg.metrics is not None and not self.args.no_metrics
        published = PublishedStats(wake=self.wake.set) if metrics_on else None
        self.monitor = Monitor(self.cfg, self.sources, self.health, hearing, self.calls,
                               self.out, self.policy, published, self.wall0,
                               live=self.supervisor is not None)

    def start_services(self) -> None:
        """The alert server, the metrics exporter and the control socket (each optional); a
        replay borrows a free port or socket when another callwatch holds the configured
        one (:mod:`daemon.endpoints`). Each is kept as soon as it runs, so that the caller
        can stop what started if a later one fails."""
        borrow = bool(self.args.replay)
        taken: list[str | None] = []
        if self.cfg.server is not None and not self.args.no_server:
            hello = {"version": self.state.version, "agent": self.cfg.agent_id,
                     "devices": self._device_names()}
            self.server, note = start_alert_server(
                self.cfg.server, hello, lambda kind, minutes: self.snoozes.put((kind, minutes)),
                borrow)
            self.out.server = self.server
            taken.append(note)
        if self.cfg.metrics is not None and self.monitor.published is not None:
            self.metrics, note = start_metrics(self.cfg.metrics, self.state,
                                               self.monitor.published,
                                               lambda: self.monitor.hearing_reading, borrow)
            self.out.metrics = self.metrics
            taken.append(note)
        self.control, note = start_control(self.cfg.control, self.requests, self.log, borrow,
                                               self.wake.set)
        self.control_borrowed = note is not None
        taken.append(note)
        self.borrowed = [what for what in taken if what is not None]
        for what in self.borrowed:
            print(f"{self.prog}: this replay takes {what}", file=sys.stderr)

    def _sensitivity(self, settings: HearingSettings) -> tuple[float | None, str]:
        """The headset's sensitivity (dB SPL at 0 dBFS) and where it comes from: the config,
        or what `callwatch check` recorded for the far-end device's model."""
        src = self.sources.get("customer")
        choice = src.choice if isinstance(src, CaptureStream) else None
        if choice is None:
            return effective_sensitivity(settings, None, load_sensitivities())
        # `check` records the headset under the server name of the source its stream landed
        # on: once the supervisor has seen where ours landed, that name. Before, the pulse
        # backend's source is its server name, whatever part of it the config gave; an ALSA
        # device name (PortAudio) says nothing of the source behind it.
        source = (src.source or choice.pulse_source
                  or (choice.name if self.backend == "pulse" else None))
        return effective_sensitivity(settings, headset_model(source, choice.name),
                                     load_sensitivities())

    def _device_names(self) -> dict[str, str | None]:
        return {n: (h.device_name or None) for n, h in self.health.items()}

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        cap = self.cfg.capture
        wd = watchdog_interval_s()
        last_ping = 0.0
        self.log.emit("started", agent=self.cfg.agent_id, config=self.cfg.path,
                      devices=self._device_names(), rates=self.monitor.rates,
                      mode="replay" if self.feeder else "capture",
                      talkover_check=("silero" if confirm_available(
                          self.cfg.detectors.confirm_vad) else "off"),
                      **({"backend": self.backend, "backend_why": self.backend_why}
                         if self.supervisor is not None else {}),
                      **({"page": self.server.page_address} if self.server else {}))
        if self.server is not None:
            # The agent at a terminal opens the page from this line; anywhere else (the
            # journal) the token stays out, and `callwatch tail --page-url` prints it.
            # `callwatch tail` asks the daemon on the configured control socket; a replay
            # that had to take a socket of its own is found only by its own URL.
            hint = "callwatch tail --page-url" + (f" --url {self.server.url}"
                                                  if self.control_borrowed else "")
            page = (self.server.page_url if sys.stderr.isatty() else
                    f"{self.server.page_address} (with its token: {hint})")
            print(f"callwatch: agent nudge page: {page}", file=sys.stderr)
        if self.metrics is not None and self.metrics.http is not None:
            print(f"callwatch: Prometheus metrics: {self.metrics.http.url}", file=sys.stderr)
        # A replay next to a running callwatch goes without a journal: the configured
        # socket's journal is that daemon's, and one per borrowed socket would pile up.
        if self.control is not None and not self.control_borrowed:
            self.monitor.open_journal(self.control.path)
        if self.feeder is not None:
            for warning in self.feeder.warnings:
                self.log.emit("replay_warning", warning=warning)
                print(f"{self.prog}: warning: {warning}", file=sys.stderr)
            self.feeder.start()
            self.monitor.start_call(auto=False, call_id=None)
        notify("READY=1", f"STATUS=monitoring {self._status()}")
        busy = False
        while True:
            if not busy:
                self._sleep(cap.process_interval_s)
            if self.stop_requested:
                break
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
            self._drain_side_queues()
            t_pass = time.perf_counter()
            self._update_health()
            busy = self.monitor.process_pass()
            if self.supervisor is not None:
                self.supervisor.notice_ended()
            now = time.monotonic()
            if self.metrics is not None:
                self.metrics.observe_processing(time.perf_counter() - t_pass)
            if wd is not None and now - last_ping >= wd and self._healthy(now):
                notify("WATCHDOG=1", f"STATUS={self._status()}")
                last_ping = now
            if self.feeder is not None and self._replay_finished():
                break
        return self._shutdown()

    def _sleep(self, longest: float) -> None:
        """Until the next tick of the libpulse streams' grid (whose audio this loop reads
        itself), or ``longest`` without them; a signal, a control request or a block from a
        PortAudio callback ends it early. Now and then the sleep is spent in a stream's own
        main loop instead, to note when its packets arrive (their capture time)."""
        now = time.monotonic()
        nxt = self.monitor.next_tick(now)
        if nxt is None:
            self.wake.wait(longest)
            return
        tick, due = nxt
        if due is not None:
            due.sleep_until(tick)
            now = time.monotonic()
        if tick > now:
            self.wake.wait(tick - now)

    def _healthy(self, now: float) -> bool:
        if now - self.monitor.last_audio < WATCHDOG_AUDIO_S:
            return True
        # Every device down: fine as long as the supervisor is alive and retrying.
        return self.supervisor is not None and self.supervisor.alive

    def _status(self) -> str:
        parts = []
        for n, h in self.health.items():
            parts.append(f"{n}={h.device_name or '?'}{'' if h.device_up else ' (down)'}")
        call = self.calls.call
        parts.append(f"call={call.id[:8] if call else 'none'}")
        return " ".join(parts)

    def _replay_finished(self) -> bool:
        if self.feeder is None or not self.feeder.done.is_set():
            return False
        return not any(s.epoch.ring.available() for s in self.sources.values()
                       if s.epoch is not None)

    def _update_health(self) -> None:
        """What the metrics read besides the audio: the last `callwatch check`, the page's
        clients (the capture counters are the monitor's, copied as it reads the rings)."""
        self.last_check.poll(self.state)
        if self.server is not None:
            self.state.ws_clients = self.server.clients
            self.state.ws_dropped_messages = self.server.dropped_messages

    # -- what other threads hand over -------------------------------------------------------

    def _follow_far_source(self) -> None:
        """Look the headset's sensitivity up again when the far-end stream is seen on another
        source: its first (with PortAudio, the source behind an ALSA name is known only
        then), or another headset plugged in."""
        src = self.sources.get("customer")
        landed = src.source if isinstance(src, CaptureStream) else None
        if landed is None or landed == self.far_source:
            return
        self.far_source = landed
        sens = self._sensitivity(self.cfg.hearing)
        hearing = self.monitor.hearing
        if sens != (hearing.sensitivity, hearing.source):
            self.monitor.configure_hearing(self.cfg.hearing, *sens)

    def _drain_side_queues(self) -> None:
        self._follow_far_source()
        while True:
            try:
                ev = self.device_events.get_nowait()
            except queue.Empty:
                break
            if self.out.device(ev, self._device_names()):
                notify(f"STATUS={self._status()}")
        while True:
            try:
                kind, minutes = self.snoozes.get_nowait()
            except queue.Empty:
                break
            self.monitor.snooze(kind, minutes)
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                break
            req.reply.put(self._control(req.command, req.arg))

    def _control(self, command: str, arg: str | None) -> dict[str, Any]:
        # A call starts and ends, and the status reports, at the audio of the moment asked:
        # what the streams captured since the last pass goes into the pipeline first.
        self.monitor.catch_up()
        if command == "start":
            # A running call is ended first; its summary goes back with the reply, as `end`
            # would give it, so a script that starts calls loses none.
            ended = (self.monitor.end_call("new call started")
                     if self.calls.call is not None else None)
            call = self.monitor.start_call(auto=False, call_id=arg)
            reply: dict[str, Any] = {"ok": True, "call_id": call.id}
            if ended is not None:
                reply["ended"] = {"call_id": ended[0].id, "summary": ended[1]}
            return reply
        if command == "end":
            ended = self.monitor.end_call("ended by control request")
            if ended is None:
                return {"ok": False, "error": "no call in progress"}
            return {"ok": True, "call_id": ended[0].id, "summary": ended[1]}
        self.monitor.flush()
        call = self.calls.call
        return {"ok": True, "call_id": call.id if call else None,
                "auto_calls": self.cfg.capture.auto_calls, "calls_total": self.calls.count,
                "position_s": round(self.monitor.pipeline.position / ANALYSIS_RATE, 3),
                "processed_s": round(self.monitor.processed_s, 3),
                "devices": {n: {"device": h.device_name, "up": h.device_up,
                                "restarts": h.restarts, "overflows": h.overflows,
                                "callbacks": h.callbacks, "dropped_blocks": h.dropped_blocks}
                            for n, h in self.health.items()},
                "queues": self._queue_sizes(), "endpoints": self._endpoints()}

    def _endpoints(self) -> dict[str, str | None]:
        """Where this daemon really serves (a replay may have taken other ports than the
        configured ones, and port 0 is picked at start), for ``callwatch tail`` and scripts:
        the WebSocket, the nudge page without its token, the metrics; ``None`` when off."""
        http = self.metrics.http if self.metrics is not None else None
        return {"websocket": self.server.url if self.server is not None else None,
                "page": self.server.page_address if self.server is not None else None,
                "metrics": http.url if http is not None else None}

    def _queue_sizes(self) -> dict[str, Any]:
        """What waits where right now (a soak checks that none of it grows): audio in each
        ring (frames), requests and device events for this loop, messages queued for
        WebSocket clients."""
        return {"ring_frames": {n: (s.epoch.ring.available() if s.epoch is not None else 0)
                                for n, s in self.sources.items()},
                "control_requests": self.requests.qsize(),
                "device_events": self.device_events.qsize(),
                "websocket_messages": (sum(c["queued"] for c in self.server.client_stats())
                                       if self.server is not None else 0)}

    # -- signals and reload -----------------------------------------------------------------

    def request_stop(self, why: str) -> None:
        self.stop_requested = why
        self.wake.set()

    def request_reload(self) -> None:
        self.reload_requested = True
        self.wake.set()

    def _reload(self) -> None:
        """Apply the config file again; whatever goes wrong, the loop keeps the old settings
        (a reload must never cost the running call its summary)."""
        old_cfg = self.cfg
        try:
            self._apply_config(load_config(old_cfg.path if old_cfg.path != "(defaults)"
                                           else None))
        except Exception as exc:
            error = ("; ".join(exc.problems) if isinstance(exc, ConfigError)  # one line
                     else f"{type(exc).__name__}: {exc}")
            # "kept=<file>" read as if the bad file had been kept: the settings are.
            self.log.emit("config_reload_failed", error=error, file=old_cfg.path,
                          settings="unchanged")
            with contextlib.suppress(Exception):  # undo a partly applied reload
                self.monitor.configure(old_cfg.detectors, old_cfg.alerts, old_cfg.capture)
            self.cfg = old_cfg

    def _apply_config(self, new: Config) -> None:
        p = reload_plan(self.cfg, new)
        self.monitor.configure(new.detectors, new.alerts, new.capture)
        if p.hearing_changed:
            self.monitor.configure_hearing(new.hearing, *self._sensitivity(new.hearing))
        self.cfg = p.config
        self.log.emit("config_reloaded", path=new.path, changed=p.changed,
                      **({"needs_restart": p.needs_restart, "warning": p.restart_warning}
                         if p.needs_restart else {}))

    def _shutdown(self) -> int:
        notify("STOPPING=1")
        rc = EXIT_OK
        if self.feeder is not None:
            self.monitor.process_pass()
            if self.feeder.error:
                self.log.emit("replay_error", error=self.feeder.error)
                rc = EXIT_BAD_INPUT
            elif self.feeder.crash:
                last = self.feeder.crash.strip().splitlines()[-1]
                self.log.emit("replay_error", error=f"internal error: {last}")
                print(f"{self.prog}: the replay stopped on an internal error (a bug; please "
                      f"report it with this traceback):\n{self.feeder.crash}", file=sys.stderr,
                      end="")
                rc = EXIT_INTERNAL_ERROR
        self.monitor.end_call(self.stop_requested or "replay finished")
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.feeder is not None:
            self.feeder.stop()
        self.log.emit("stopped", reason=self.stop_requested or "replay finished",
                      processed_s=round(self.monitor.processed_s, 2),
                      streams={n: {"restarts": h.restarts, "overflows": h.overflows,
                                   "dropped_blocks": h.dropped_blocks, "callbacks": h.callbacks}
                               for n, h in self.health.items()},
                      skew_ppm={k: (round(v, 1) if v is not None else None)
                                for k, v in self.monitor.aligner.skew_ppm().items()})
        if self.control is not None:
            self.control.stop()
        self.monitor.close()
        if self.server is not None:
            self.server.stop(timeout_s=1.0)
        if self.metrics is not None:
            stop_metrics(self.metrics)
        return rc
