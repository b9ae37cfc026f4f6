"""``callwatch run``: the live daemon's command line.

It validates the config and the arguments, opens the event log, builds the
:class:`~daemon.service.Service` (the processing loop and everything it drives), starts it
and turns what goes wrong into one line on stderr and an exit code: 0 stopped, 1 internal
error (a replay thread died of a bug), 2 bad config, arguments or input (a missing device, an
unreadable file), 3 cannot run here (no PortAudio library, an endpoint in use). SIGTERM and
SIGINT stop the loop, SIGHUP reloads the config.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from daemon.audiofile import AudioFileError
from daemon.command import EXIT_BAD_INPUT, EXIT_CANNOT_RUN
from daemon.config import ConfigError, load_config, resolve_path
from daemon.device_choice import DeviceError, NoInputDevices
from daemon.logjson import EventLog
from daemon.service import Service
from daemon.startable import check_devices, check_startable

EXIT_OK = 0


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


def speed_problem(speed: float) -> str | None:
    """Why ``--speed`` cannot pace a replay (``None``: it can); ``callwatch demo`` asks
    before it announces the replay."""
    if not (0.01 <= speed <= 10000):
        return f"--speed {speed}: must be between 0.01 and 10000"
    return None


def main(args: argparse.Namespace, service_class: type[Service] | None = None,
         command: str = "run") -> int:
    """Run the daemon with ``args`` (see :func:`add_arguments`); ``service_class``: a
    :class:`~daemon.service.Service` subclass to run instead, and ``command`` the name the
    user typed, for the messages (``callwatch demo``'s)."""
    prog = f"callwatch {command}"
    path = resolve_path(args.config)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{prog}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check_config:
        device_problems, note = check_devices(cfg)
        problems = check_startable(cfg) + device_problems
        for problem in problems:
            print(f"{prog}: {problem}", file=sys.stderr)
        if problems:
            return EXIT_BAD_INPUT
        if note:
            print(f"{prog}: note: {note}", file=sys.stderr)
        print(f"{cfg.path}: OK")
        return EXIT_OK
    if problem := speed_problem(args.speed):
        print(f"{prog}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.replay and not os.path.exists(args.replay):
        print(f"{prog}: --replay {args.replay}: no such file", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        log = EventLog.for_cli(args.log_json, args.output)
    except OSError as exc:
        print(f"{prog}: --log-json {args.log_json}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    service = (service_class or Service)(cfg, log, args, command)
    # A device spec comes from the config file: name it, as every other config error does.
    where = f"{prog}: {cfg.path}:" if cfg.path else f"{prog}:"
    try:
        service.open_inputs()
    except NoInputDevices as exc:
        print(f"{where} {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except DeviceError as exc:
        print(f"{where} {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AudioFileError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # PortAudio library missing
        print(f"{prog}: {exc}; install Debian's libportaudio2 and libasound2-plugins",
              file=sys.stderr)
        return EXIT_CANNOT_RUN
    try:
        service.start_services()
    except (OSError, RuntimeError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
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
