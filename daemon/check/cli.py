"""``callwatch check``: validate a headset install in well under a minute.

Four steps, on the devices ``callwatch run`` would use (same config, same selection rules):

1. **devices**: the mic and the far-end source open at the configured rate and deliver audio;
2. **silence** (3 s, the agent stays quiet): noise floor, mains hum, DC offset, dead/muted mic;
3. **speech** (about 5 s): the agent reads a sentence shown on screen, or ``--speech FILE`` is
   played into the mic path (``--speech-sink``, a sound-server sink that feeds the mic, e.g. a
   test rig's) or out of the speaker: P.56 active level, clipping, SNR;
4. **playback**: a 1 s speech-band noise burst at a safe level out of the headset speaker;
   cross-correlation finds how much reaches the mic (speaker leak / echo), how late, and
   whether the far-end capture really carries what the speaker plays.

Each item gets PASS, WARN or FAIL with the value, the limit and a concrete fix. Exit code: 0
all pass, 1 warnings, 2 a failure (a configured device missing is a failure of its item) or
bad input, 3 could not run (no PortAudio, no sound server, no audio device at all). ``--json``
prints one ``callwatch.check/1`` object (docs/check.md), also when the check does not run:
``"result": "error"`` with the reason, so a fleet script that parses stdout tells bad input
(exit 2, like every command's) from a headset that fails (``"result": "fail"``, exit 2). The
result is also saved to ``$XDG_STATE_HOME/callwatch/check.json``, where the daemon picks it up
for its metrics (:mod:`daemon.check.result`).

This module is the command line; the steps are :mod:`daemon.check.steps`, the device I/O
:mod:`daemon.check.audio`, the numbers :mod:`daemon.check.measure` and their verdicts
:mod:`daemon.check.judge`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import sys
import time
from typing import Any, NoReturn

from daemon.audiofile import AudioFileError, open_audio
from daemon.check.judge import overall
from daemon.check.result import SCHEMA, Item, default_result_path, save_result
from daemon.check.steps import Check
from daemon.command import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN,
    CommandError,
    command,
    load_command_config,
)
from daemon.config import ConfigError
from daemon.device_choice import DeviceError
from daemon.devices import list_input_devices
from daemon.hearing import headset_model, record_sensitivity
from daemon.portaudio import load_sounddevice

EXIT_OK, EXIT_WARN, EXIT_FAIL = 0, 1, 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML",
                   help="config file (default: $XDG_CONFIG_HOME/callwatch/config.toml if present)")
    p.add_argument("--mic", metavar="DEVICE",
                   help="mic device (overrides [capture] mic_device; name part, index, "
                   "pulse:SOURCE or default)")
    p.add_argument("--far-end", metavar="DEVICE",
                   help="far-end source (overrides [capture] far_end_device)")
    p.add_argument("--speaker", metavar="DEVICE",
                   help="output for the playback test: an output device name part or index, "
                   "or pulse:SINK (default: the sink whose monitor is the far-end source)")
    p.add_argument("--non-interactive", action="store_true",
                   help="no prompts (fleet scripts): the speech test needs --speech")
    p.add_argument("--json", action="store_true",
                   help=f"print one {SCHEMA} JSON object instead of the readable report")
    p.add_argument("--speech", metavar="FILE",
                   help="a speech recording (WAV, FLAC, MP3, ...) to use for the speech test")
    p.add_argument("--speech-sink", metavar="SINK",
                   help="PulseAudio/PipeWire sink that feeds the mic (a test route); --speech "
                   "is played there instead of out of the speaker")
    p.add_argument("--silence-s", type=float, default=3.0, metavar="S",
                   help="silence test length (default 3)")
    p.add_argument("--speech-s", type=float, default=5.0, metavar="S",
                   help="interactive speech test length (default 5)")
    p.add_argument("--no-playback", action="store_true",
                   help="skip the playback test (e.g. while a call is on the speaker)")
    p.add_argument("--no-save", action="store_true",
                   help="do not save the result for the daemon's metrics")
    p.add_argument("--dbspl-at-0dbfs", type=float, metavar="DB",
                   help="record this headset model's sensitivity (dB SPL at the ear for a 0 dBFS "
                   "far-end signal, from a measurement or the data sheet) for the daily "
                   "exposure; see docs/check.md")
    refuse = p.error

    def error(message: str) -> NoReturn:
        # A flag argparse refuses (--silence-s abc) is bad input too: a fleet script reading
        # --json gets its object, as for every other refusal.
        if "--json" in sys.argv[1:]:
            print(json.dumps(error_result(message, EXIT_BAD_INPUT)))
        refuse(message)

    p.error = error  # type: ignore[method-assign]


# -- report ---------------------------------------------------------------------------------


def build_result(items: list[Item], devices: dict[str, Any], started: float, wall: float,
                 mode: str, agent: str) -> dict[str, Any]:
    verdict = overall(items)
    return {
        "schema": SCHEMA,
        "result": verdict.label,
        "exit_code": int(verdict),
        "timestamp": dt.datetime.fromtimestamp(wall, dt.UTC).isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "unix_time": round(wall, 3),
        "duration_s": round(time.monotonic() - started, 2),
        "mode": mode,
        "agent": agent,
        "host": socket.gethostname(),
        "devices": devices,
        "items": [i.to_json() for i in items],
    }


def render_text(result: dict[str, Any]) -> str:
    lines = []
    for it in result["items"]:
        lines.append(f"{it['verdict'].upper():<5} {it['name']:<15} {it['message']}")
        if it.get("fix") and it["verdict"] in ("warn", "fail"):
            lines.append(f"{'':<22}fix: {it['fix']}")
    lines.append("")
    lines.append(f"Result: {result['result'].upper()} in {result['duration_s']:.1f} s "
                 f"(exit {result['exit_code']})")
    return "\n".join(lines)


def error_result(message: str, exit_code: int) -> dict[str, Any]:
    """The ``callwatch.check/1`` object of a check that did not run: bad input (exit 2) or
    nothing to test on here (exit 3)."""
    return {"schema": SCHEMA, "result": "error", "exit_code": exit_code, "error": message,
            "items": []}


def _cannot_run(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps(error_result(message, EXIT_CANNOT_RUN)))
    print(f"callwatch check: {message}", file=sys.stderr)
    return EXIT_CANNOT_RUN


@command("check")
def main(args: argparse.Namespace) -> int:
    """The check; input it cannot use is still one JSON object under ``--json`` (the
    :func:`~daemon.command.command` decorator prints the line on stderr)."""
    try:
        return _check(args)
    except (CommandError, ConfigError) as exc:
        if args.json:
            code = exc.exit_code if isinstance(exc, CommandError) else EXIT_BAD_INPUT
            text = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
            print(json.dumps(error_result(text, code)))
        raise


def _speech_file_error(path: str) -> str | None:
    """Why ``--speech FILE`` cannot be played, naming the file and the fix (``None``: it
    can), in the words ``callwatch analyze`` uses for a recording it cannot read. What the
    reader warns of (a WAV cut short is played as far as it goes) goes to stderr, so the
    test burst's length is no surprise."""
    warnings: list[str] = []
    try:
        open_audio(path, warnings).close()
    except AudioFileError as exc:
        return f"--speech {exc}"
    for warning in warnings:
        print(f"callwatch check: warning: --speech {warning}", file=sys.stderr)
    return None


def _check(args: argparse.Namespace) -> int:
    cfg = load_command_config(args.config)
    for flag, v, lo, hi in (("--silence-s", args.silence_s, 1, 30),
                            ("--speech-s", args.speech_s, 2, 30)):
        if not lo <= v <= hi:
            raise CommandError(f"{flag} {v}: must be between {lo} and {hi}")
    if args.speech and (problem := _speech_file_error(args.speech)):
        raise CommandError(problem)
    sens = getattr(args, "dbspl_at_0dbfs", None)
    if sens is not None and not 60.0 <= sens <= 140.0:
        raise CommandError(f"--dbspl-at-0dbfs {sens:g}: must be between 60 and 140 (the dB "
                           "SPL a 0 dBFS signal gives at the ear)")
    interactive = not args.non_interactive
    if interactive and not sys.stdin.isatty():
        print("callwatch check: stdin is not a terminal; running non-interactively "
              "(--non-interactive)", file=sys.stderr)
        interactive = False
    try:
        sd = load_sounddevice()  # raises OSError without the PortAudio library
    except OSError as exc:
        return _cannot_run(args, f"{exc}; install Debian's libportaudio2 and libasound2-plugins")
    try:
        devices = list_input_devices(sd)
    except Exception as exc:
        return _cannot_run(args, f"PortAudio cannot list devices: {exc}")
    if not devices:
        return _cannot_run(args, "no audio input devices at all: is PulseAudio/PipeWire "
                           "running (pactl info) and libasound2-plugins installed?")
    started, wall = time.monotonic(), time.time()
    check = Check(args, cfg, sd, interactive)
    try:
        check.run()
    except DeviceError as exc:  # --speech-sink naming no sink
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    mode = "interactive" if interactive else "non-interactive"
    result = build_result(check.items, check.devices, started, wall, mode, cfg.agent_id)
    if not args.no_save:
        try:
            save_result(result)
        except OSError as exc:
            print(f"callwatch check: cannot save the result to {default_result_path()}: "
                  f"{exc.strerror}; the daemon will not export it", file=sys.stderr)
    if sens is not None:
        _record_sensitivity(check.devices.get("far_end", {}), sens)
    if args.json:
        print(json.dumps(result))
    else:
        print(render_text(result))
    sys.stdout.flush()
    return int(result["exit_code"])


def _record_sensitivity(far_end: dict[str, Any], dbspl_at_0dbfs: float) -> None:
    """Record the sensitivity for the far-end device's headset model (stderr says where)."""
    model = headset_model(far_end.get("source"), far_end.get("name"))
    if model is None:
        print("callwatch check: --dbspl-at-0dbfs not recorded: the far-end device did not "
              "open; fix it (see the far_end_device item) and run the check again",
              file=sys.stderr)
        return
    try:
        path = record_sensitivity(model, dbspl_at_0dbfs)
    except OSError as exc:
        print(f"callwatch check: cannot record the sensitivity: {exc}", file=sys.stderr)
        return
    print(f"callwatch check: recorded dbspl_at_0dbfs = {dbspl_at_0dbfs:g} for {model} in {path}",
          file=sys.stderr)
