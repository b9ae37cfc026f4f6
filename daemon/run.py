"""``callwatch run``: the live daemon.

Threads: PortAudio's callbacks (copy into rings, nothing else), the capture supervisor
(opens, watches and reopens devices), the alert server's asyncio loop, the control socket,
and this module's **processing loop**, the only place where audio becomes events and events
become log lines, alerts, WebSocket messages, metrics and call summaries. Every pass it:

1. follows each stream to its current epoch (a reopened device), reads new samples and
   capture timestamps from the rings;
2. aligns the two streams on one timeline (:mod:`daemon.align`), silence for a stream that is
   down, so the other keeps being analysed;
3. runs the pipeline in bounded chunks, so the interpreter switches to the audio threads often;
4. hands the events to the call tracker, the alert policy, the server and the metrics;
5. pings the systemd watchdog if audio was processed.

``--replay FILE`` swaps the capture streams for a paced file reader writing into the same
rings; everything after the rings is the same code.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from daemon.config import Config, ConfigError, load_config, resolve_path

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_CANNOT_RUN = 3

PUSH_MAX_S = 0.5
"""Audio per pipeline call: bounds the time between interpreter switches to the callbacks."""

PASS_MAX_S = 5.0
"""Audio per loop pass, so signals, control requests and the watchdog are served promptly."""

LEVELS_EVERY_S = 0.25
"""Live level meters go out, and automatic call start/end is decided, at 4 Hz."""

WATCHDOG_AUDIO_S = 5.0
"""The watchdog is pinged only if audio was processed this recently (or devices are being
recovered): a wedged processing loop gets the daemon restarted by systemd."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML",
                   help="config file (default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--check-config", action="store_true",
                   help="validate the config file and exit (0 valid, 2 invalid)")
    p.add_argument("--replay", metavar="CALL", help="feed a recorded stereo call (ch0 agent, "
                   "ch1 customer) through the live path instead of capturing")
    p.add_argument("--speed", type=float, default=1.0, metavar="N",
                   help="replay pace: 1 = real time, 10 = ten times faster (default 1)")
    p.add_argument("--log-json", metavar="FILE",
                   help="also append every event as one JSON line to FILE ('-' = stdout)")
    p.add_argument("--output", choices=("auto", "text", "json"), default="auto",
                   help="stdout format: text on a terminal, JSON lines otherwise (default auto)")
    p.add_argument("--no-server", action="store_true",
                   help="do not start the WebSocket alert server")
    p.add_argument("--no-metrics", action="store_true",
                   help="do not start the Prometheus exporter")


def _changes(old: Any, new: Any, table: str) -> dict[str, list[Any]]:
    if old is None or new is None:
        return {}
    return {f"{table}.{f.name}": [getattr(old, f.name), getattr(new, f.name)]
            for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)}


class Service:
    """The processing loop and everything it drives."""

    def __init__(self, cfg: Config, log: Any, args: argparse.Namespace) -> None:
        from alerts.policy import AlertPolicy
        from daemon.check import LastCheckWatcher
        from daemon.state import DaemonState
        from dsp.events import Stream

        self.cfg = cfg
        self.log = log
        self.args = args
        self.state = DaemonState(agent_id=cfg.agent_id, version=_version())
        self.last_check = LastCheckWatcher()  # `callwatch check` results -> the metrics
        self.health = {"agent": self.state.streams[Stream.AGENT],
                       "customer": self.state.streams[Stream.CUSTOMER]}
        self.policy = AlertPolicy(cfg.alerts) if cfg.alerts is not None else None
        self.device_events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.snoozes: queue.SimpleQueue[tuple[Any, float]] = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stop_requested: str | None = None
        self.reload_requested = False
        self.server: Any = None
        self.metrics: Any = None
        self.published: Any = None
        self.control: Any = None
        self.supervisor: Any = None
        self.feeder: Any = None
        self.sources: dict[str, Any] = {}
        self.last_audio = 0.0
        self.last_levels = -1.0
        self.wall0 = time.time()
        self.processed_s = 0.0

    # -- setup ------------------------------------------------------------------------------

    def open_inputs(self) -> None:
        """Capture devices or the replay; raises DeviceError/AudioFileError/OSError."""
        cap = self.cfg.capture
        if self.args.replay:
            from daemon.audiofile import CallSource
            from daemon.replay import ReplayFeeder

            self.feeder = ReplayFeeder(CallSource(self.args.replay, self.args.replay),
                                       self.args.speed, cap.block_s, max(cap.ring_s, 2.0))
            self.sources = {"agent": self.feeder.agent, "customer": self.feeder.customer}
            for name, src in self.sources.items():
                self.health[name].device_name = f"replay:{Path(src.label).name}"
                self.health[name].device_up = True
            return
        import sounddevice as sd

        from daemon.capture import CaptureStream, Supervisor

        mic = CaptureStream("agent", cap.mic_device, "mic_device", "mic", cap,
                            self.health["agent"])
        far = CaptureStream("customer", cap.far_end_device, "far_end_device", "far end", cap,
                            self.health["customer"])
        self.supervisor = Supervisor([mic, far], cap, self.device_events)
        self.supervisor.start_initial(sd)
        self.sources = {"agent": mic, "customer": far}

    def start_services(self) -> None:
        """The alert server, the metrics exporter and the control socket (each optional)."""
        from daemon.calls import ControlServer, socket_path

        if self.cfg.server is not None and not self.args.no_server:
            from alerts.server import AlertServer

            self.server = AlertServer(
                self.cfg.server,
                hello_info={"version": self.state.version, "agent": self.cfg.agent_id,
                            "devices": self._device_names()},
                on_snooze=lambda kind, minutes: self.snoozes.put((kind, minutes)))
            self.server.start()
        if self.cfg.metrics is not None and not self.args.no_metrics:
            self.metrics = _start_metrics(self.cfg, self.state, self)
        self.control = ControlServer(socket_path(self.cfg.control), self.requests)
        self.control.start()

    def _device_names(self) -> dict[str, str | None]:
        return {n: (h.device_name or None) for n, h in self.health.items()}

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> int:
        from daemon.align import Aligner
        from daemon.calls import CallTracker
        from daemon.capture import StreamReader
        from daemon.notify import notify, watchdog_interval_s
        from dsp.pipeline import Pipeline

        cap = self.cfg.capture
        rates = {n: int(s.rate) for n, s in self.sources.items()}
        self.pipeline = Pipeline(self.cfg.detectors, rates["agent"], rates["customer"])
        self.aligner = Aligner(rates["agent"], rates["customer"], cap.skew_window_s)
        self.readers = {n: StreamReader() for n in self.sources}
        self.calls = CallTracker(cap)
        wd = watchdog_interval_s()
        last_ping = 0.0
        self.log.emit("started", agent=self.cfg.agent_id, config=self.cfg.path,
                      devices=self._device_names(), rates=rates,
                      mode="replay" if self.feeder else "capture",
                      **({"page": self.server.page_url} if self.server else {}))
        if self.server is not None:
            print(f"callwatch: agent nudge page: {self.server.page_url}", file=sys.stderr)
        if self.metrics is not None and self.metrics.http is not None:
            print(f"callwatch: Prometheus metrics: {self.metrics.http.url}", file=sys.stderr)
        if self.feeder is not None:
            self.feeder.start()
            self._start_call(auto=False, call_id=None)
        notify("READY=1", f"STATUS=monitoring {self._status()}")
        busy = False
        while True:
            if not busy:
                self.wake.wait(cap.process_interval_s)
                self.wake.clear()
            if self.stop_requested:
                break
            if self.reload_requested:
                self.reload_requested = False
                self._reload()
            self._drain_side_queues()
            t_pass = time.perf_counter()
            busy = self._process_pass()
            now = time.monotonic()
            if self.metrics is not None:
                self.metrics.observe_processing(time.perf_counter() - t_pass)
            if wd is not None and now - last_ping >= wd and self._healthy(now):
                notify("WATCHDOG=1", f"STATUS={self._status()}")
                last_ping = now
            if self.feeder is not None and self._replay_finished():
                break
        return self._shutdown()

    def _healthy(self, now: float) -> bool:
        if now - self.last_audio < WATCHDOG_AUDIO_S:
            return True
        # Every device down: fine as long as the supervisor is alive and retrying.
        return self.supervisor is not None and self.supervisor.alive

    def _status(self) -> str:
        parts = []
        for n, h in self.health.items():
            parts.append(f"{n}={h.device_name or '?'}{'' if h.device_up else ' (down)'}")
        call = self.calls.call if hasattr(self, "calls") else None
        parts.append(f"call={call.id[:8] if call else 'none'}")
        return " ".join(parts)

    def _replay_finished(self) -> bool:
        if not self.feeder.done.is_set():
            return False
        return not any(s.epoch.ring.available() for s in self.sources.values())

    def _process_pass(self) -> bool:
        """One pass over the rings; True if it stopped at the work cap (more is waiting)."""
        up = {}
        for name, src in self.sources.items():
            r = self.readers[name]
            al = self.aligner.streams[name]
            if r.switch(src.epoch):
                al.new_epoch()
            for n, t in r.read_timestamps():
                al.add_timestamp(n, t)
            al.add_samples(r.read_samples())
            ep = src.epoch
            up[name] = bool(src.up or (getattr(src, "stream", None) is not None
                                       and ep is not None and ep.callbacks > 0))
        self._update_health()
        got = self.aligner.pull(up)
        if got is None:
            return False
        agent, customer = got
        self.last_audio = time.monotonic()
        ra, rc = self.aligner.streams["agent"].rate, self.aligner.streams["customer"].rate
        step = PUSH_MAX_S
        i = 0.0
        total = max(len(agent) / ra, len(customer) / rc)
        while i < total:
            a = agent[round(i * ra):round((i + step) * ra)]
            c = customer[round(i * rc):round((i + step) * rc)]
            events = self.pipeline.push(a, c)
            self._after_audio(events)
            i += step
        self.processed_s += total
        if self.feeder is not None:  # a fast replay fills the rings: drain without sleeping
            return any(src.epoch.ring.available() * 2 >= src.epoch.ring.capacity
                       for src in self.sources.values())
        return total >= PASS_MAX_S

    def media_now(self) -> float:
        """Wall-clock time of the audio being processed (replays run on their own clock)."""
        return self.wall0 + self.pipeline.position / 16000.0

    def _after_audio(self, events: list[Any]) -> None:
        from dsp import ANALYSIS_RATE
        from dsp.events import Kind

        now_s = self.pipeline.position / ANALYSIS_RATE
        if events:
            self.calls.add_events(events)
            t0 = self.aligner.t0 if self.supervisor is not None else None
            mono = time.monotonic()
            for e in events:
                extra = {}
                if t0 is not None:
                    # capture time of the sample that confirmed the event -> now
                    extra["latency_ms"] = round(1000 * (mono - t0 - e.end / ANALYSIS_RATE), 1)
                self.log.emit(e.kind.value, phase=e.phase.value, **e.to_json(),
                              call_id=self.calls.call.id if self.calls.call else None, **extra)
        if self.policy is not None:
            # Dead air outside a call is just an idle workstation.
            relevant = events if self.calls.call else [e for e in events
                                                       if e.kind is not Kind.SILENCE]
            self._publish_alerts(self.policy.update(relevant, self.media_now()))
        if now_s - self.last_levels < LEVELS_EVERY_S:
            return
        # Stats snapshots cost more than a pass of the loop: take them a few times a second.
        self.last_levels = now_s
        if self.published is not None:
            self.published.publish(self.pipeline)  # frozen snapshots for scrapes
            totals, stats = self.published()
        else:
            totals, stats = self.pipeline.totals, None
        decision = self.calls.observe(now_s, totals.customer.speech_s, totals.customer.speaking)
        if decision == "start":
            self._start_call(auto=True, call_id=None)
        elif decision == "end":
            self._end_call("far end silent")
        if self.server is not None:
            from alerts import protocol

            stats = stats or self.pipeline.stats
            self.server.publish(protocol.levels_message(stats.agent, stats.customer,
                                                        self.media_now()), "levels")

    def _publish_alerts(self, alerts: list[Any]) -> None:
        if not alerts:
            return
        from alerts import protocol

        for a in alerts:
            msg = protocol.alert_to_json(a)
            self.log.emit("alert", **msg)
            if a.state == "firing":
                self.state.alerts_fired[a.kind.value] += 1
            if self.server is not None:
                self.server.publish(protocol.alert_message(a), "alerts")
        self.state.alerts_active.clear()
        for a in self.policy.active:
            self.state.alerts_active[a.kind.value] += 1

    def _start_call(self, auto: bool, call_id: str | None) -> Any:
        from dsp import ANALYSIS_RATE

        if self.calls.call is not None:
            self._end_call("new call started")
        self.pipeline.start_call()
        pos = self.pipeline.position
        call = self.calls.start(pos / ANALYSIS_RATE, pos, self.media_now(), auto, call_id)
        self.state.calls_total = self.calls.count
        self.state.call_active = True
        self.log.emit("call_started", call_id=call.id, auto=auto)
        if self.server is not None:
            from alerts import protocol

            self.server.publish(protocol.call_started_message(call.id, self.media_now()),
                                "calls")
        return call

    def _end_call(self, reason: str) -> tuple[Any, dict[str, Any]] | None:
        from dsp import ANALYSIS_RATE

        if self.calls.call is None:
            return None
        closing = self.pipeline.end_call()
        for e in closing:
            self.log.emit(e.kind.value, phase=e.phase.value, **e.to_json(),
                          call_id=self.calls.call.id)
        if self.policy is not None:
            self._publish_alerts(self.policy.update(closing, self.media_now()))
        call, summary = self.calls.end(self.pipeline.stats, closing,
                                       self.pipeline.position / ANALYSIS_RATE)
        if self.published is not None:
            self.published.publish(self.pipeline)
        self.state.call_active = False
        if self.metrics is not None:
            self.metrics.observe_call_end(float(summary["duration_s"]))
        self.log.emit("call_ended", call_id=call.id, reason=reason, summary=summary)
        if self.server is not None:
            from alerts import protocol

            self.server.publish(protocol.call_ended_message(call.id, self.media_now(), summary),
                                "calls")
        return call, summary

    def _drain_side_queues(self) -> None:
        while True:
            try:
                ev = self.device_events.get_nowait()
            except queue.Empty:
                break
            self._device_event(ev)
        while True:
            try:
                kind, minutes = self.snoozes.get_nowait()
            except queue.Empty:
                break
            if self.policy is not None:
                self.policy.snooze(kind, self.media_now() + 60.0 * float(minutes))
                self._publish_alerts(self.policy.tick(self.media_now()))
        while True:
            try:
                req = self.requests.get_nowait()
            except queue.Empty:
                break
            req.reply.put(self._control(req.command, req.arg))

    def _control(self, command: str, arg: str | None) -> dict[str, Any]:
        if command == "start":
            call = self._start_call(auto=False, call_id=arg)
            return {"ok": True, "call_id": call.id}
        if command == "end":
            ended = self._end_call("ended by control request")
            if ended is None:
                return {"ok": False, "error": "no call in progress"}
            return {"ok": True, "call_id": ended[0].id, "summary": ended[1]}
        call = self.calls.call
        return {"ok": True, "call_id": call.id if call else None,
                "auto_calls": self.cfg.capture.auto_calls, "calls_total": self.calls.count,
                "position_s": round(self.pipeline.position / 16000.0, 3),
                "processed_s": round(self.processed_s, 3),
                "devices": {n: {"device": h.device_name, "up": h.device_up,
                                "restarts": h.restarts, "overflows": h.overflows,
                                "callbacks": h.callbacks, "dropped_blocks": h.dropped_blocks}
                            for n, h in self.health.items()}}

    def _device_event(self, ev: Any) -> None:
        if ev.type == "supervisor_error":
            self.log.emit("supervisor_error", error=ev.reason)
            return
        fields: dict[str, Any] = {"stream": ev.stream, "device": ev.device}
        if ev.type == "device_lost":
            fields["reason"] = ev.reason
        elif ev.type == "device_restored":
            fields.update(down_s=round(ev.down_s, 3), restarts=ev.restarts, after=ev.reason)
        self.log.emit(ev.type, **fields)
        from daemon.notify import notify

        notify(f"STATUS={self._status()}")
        if self.server is not None:
            from alerts import protocol

            state = {"device_lost": "lost", "device_up": "up"}.get(ev.type, "restored")
            self.server.publish(protocol.device_message(ev.stream, state, ev.device, time.time(),
                                                        ev.reason or None), "devices")
            self.server.set_hello_info(devices=self._device_names())

    def _update_health(self) -> None:
        self.last_check.poll(self.state)
        for name, r in self.readers.items():
            overflows, callbacks, overruns = r.totals()
            h = self.health[name]
            h.overflows = overflows
            h.callbacks = callbacks
            h.dropped_blocks = overruns
        if self.server is not None:
            self.state.ws_clients = self.server.clients
            self.state.ws_dropped_messages = self.server.dropped_messages

    # -- signals and reload -----------------------------------------------------------------

    def request_stop(self, why: str) -> None:
        self.stop_requested = why
        self.wake.set()

    def request_reload(self) -> None:
        self.reload_requested = True
        self.wake.set()

    def _reload(self) -> None:
        try:
            new = load_config(self.cfg.path if self.cfg.path != "(defaults)" else None)
        except ConfigError as exc:
            self.log.emit("config_reload_failed", error=str(exc), kept=self.cfg.path)
            return
        changed = {**_changes(self.cfg.detectors, new.detectors, "detectors"),
                   **_changes(self.cfg.alerts, new.alerts, "alerts"),
                   **_changes(self.cfg.capture, new.capture, "capture")}
        self.pipeline.update_settings(new.detectors)
        if self.policy is not None and new.alerts is not None:
            self.policy.update_settings(new.alerts)
        cap_old, cap_new = self.cfg.capture, new.capture
        self.calls.settings = cap_new
        restart = [k for k in changed if k.startswith("capture.") and k not in (
            "capture.auto_calls", "capture.call_start_speech_s", "capture.call_end_silence_s")]
        self.cfg = dataclasses.replace(new, capture=dataclasses.replace(
            cap_new, **{k.split(".", 1)[1]: getattr(cap_old, k.split(".", 1)[1])
                        for k in restart}))
        self.log.emit("config_reloaded", path=new.path, changed=changed,
                      **({"needs_restart": restart} if restart else {}))

    def _shutdown(self) -> int:
        from daemon.notify import notify

        notify("STOPPING=1")
        rc = EXIT_OK
        if self.feeder is not None:
            self._process_pass()
            if self.feeder.error:
                self.log.emit("replay_error", error=self.feeder.error)
                rc = EXIT_BAD_INPUT
        self._end_call(self.stop_requested or "replay finished")
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.feeder is not None:
            self.feeder.stop()
        self.log.emit("stopped", reason=self.stop_requested or "replay finished",
                      processed_s=round(self.processed_s, 2),
                      streams={n: {"restarts": h.restarts, "overflows": h.overflows,
                                   "dropped_blocks": h.dropped_blocks, "callbacks": h.callbacks}
                               for n, h in self.health.items()},
                      skew_ppm={k: (round(v, 1) if v is not None else None)
                                for k, v in self.aligner.skew_ppm().items()})
        if self.control is not None:
            self.control.stop()
        if self.server is not None:
            self.server.stop(timeout_s=1.0)
        if self.metrics is not None:
            _stop_metrics(self.metrics)
        return rc


# -- optional integrations ----------------------------------------------------------------


def _start_metrics(cfg: Config, state: Any, service: Service) -> Any:
    """The Prometheus collectors (read at scrape time, from snapshots the loop publishes:
    the pipeline is not thread-safe) and their HTTP endpoint."""
    from daemon.metrics import Metrics, PublishedStats, default_registry
    from daemon.metrics_server import MetricsServerError, start_metrics_server

    service.published = PublishedStats()
    registry = default_registry()
    metrics = Metrics(registry, state, pipeline_stats=service.published)
    if cfg.metrics.enabled:
        try:
            metrics.http = start_metrics_server(cfg.metrics, registry)
        except MetricsServerError as exc:
            raise OSError(str(exc)) from None
    else:
        metrics.http = None
    return metrics


def _stop_metrics(metrics: Any) -> None:
    if getattr(metrics, "http", None) is not None:
        metrics.http.stop()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("callwatch")
    except Exception:
        return "0"


def main(args: argparse.Namespace) -> int:
    path = resolve_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"callwatch run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check_config:
        print(f"{cfg.path}: OK")
        return EXIT_OK
    if not (0.01 <= args.speed <= 10000):
        print(f"callwatch run: --speed {args.speed}: must be between 0.01 and 10000",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.replay and not os.path.exists(args.replay):
        print(f"callwatch run: --replay {args.replay}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    from daemon.logjson import EventLog

    try:
        log = EventLog.for_cli(args.log_json, args.output)
    except OSError as exc:
        print(f"callwatch run: --log-json {args.log_json}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from daemon.audiofile import AudioFileError
    from daemon.devices import DeviceError

    service = Service(cfg, log, args)
    try:
        service.open_inputs()
    except (DeviceError, AudioFileError) as exc:
        print(f"callwatch run: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # PortAudio library missing
        print(f"callwatch run: {exc}; install Debian's libportaudio2 and libasound2-plugins",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        service.start_services()
    except (OSError, RuntimeError) as exc:
        print(f"callwatch run: {exc}", file=sys.stderr)
        if service.supervisor is not None:
            service.supervisor.stop()
        if service.server is not None:
            service.server.stop(timeout_s=1.0)
        return EXIT_CANNOT_RUN
    signal.signal(signal.SIGTERM, lambda *_: service.request_stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: service.request_stop("SIGINT"))
    signal.signal(signal.SIGHUP, lambda *_: service.request_reload())
    try:
        rc = service.run()
    finally:
        log.close()
    if service.supervisor is not None:
        # PortAudio's exit handler can abort (an assertion in its mutex teardown) after a
        # sound-server restart; every stream is closed and every record written by now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc
