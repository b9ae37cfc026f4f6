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
prints one ``callwatch.check/1`` object (docs/check.md). The result is also saved to
``$XDG_STATE_HOME/callwatch/check.json``, where the daemon picks it up for its metrics
(:func:`load_last_check`, :func:`apply_last_check`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from daemon.check_audio import (
    OutputTarget,
    Player,
    Recorder,
    record,
    resample,
    resolve_output,
    source_state,
    wait_first_audio,
)
from daemon.check_measure import (
    CheckSettings,
    Coupling,
    Item,
    SpeechMeasure,
    Verdict,
    band_limited_noise,
    dc_offset,
    is_digital_silence,
    judge_clipping,
    judge_dc,
    judge_echo,
    judge_far_end_route,
    judge_hum,
    judge_latency,
    judge_mic_signal,
    judge_noise,
    judge_snr,
    judge_speech_level,
    measure_coupling,
    measure_hum,
    measure_speech,
    noise_floor_dbfs,
    overall,
)

SCHEMA = "callwatch.check/1"
EXIT_OK, EXIT_WARN, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2, 3
EXIT_BAD_INPUT = 2

SENTENCE = ("Thank you for calling. My name is Alex, and I will be glad to help you with "
            "your order today.")
FIRST_AUDIO_TIMEOUT_S = 3.0
"""A stream that delivers nothing for this long after opening is stalled (an idle source may
take ~2 s to start)."""
PLAY_TAIL_S = 0.6
"""Capture kept after the burst: room for the echo path delay (the detectors search 0.3 s)."""
SPEECH_MAX_S = 15.0


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
                   help="a speech recording (WAV/FLAC) to use for the speech test")
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


# -- the saved result -----------------------------------------------------------------------


def default_result_path() -> Path:
    """``$XDG_STATE_HOME/callwatch/check.json`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state")
    return Path(base) / "callwatch" / "check.json"


def save_result(result: dict[str, Any], path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically (temp file + rename): a reader never sees half a result."""
    target = Path(path) if path is not None else default_result_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".check-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def load_last_check(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The last saved check result, or ``None`` if there is none or it is not a valid
    ``callwatch.check/1`` object (never raises: the daemon must not die of a bad file)."""
    p = Path(path) if path is not None else default_result_path()
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    if not isinstance(data.get("items"), list):
        return None
    return data


def check_verdicts(result: dict[str, Any]) -> dict[str, int]:
    """``{item: 0 pass | 1 warn | 2 fail}`` of a result; skipped items are left out."""
    codes = {"pass": 0, "warn": 1, "fail": 2}
    out: dict[str, int] = {}
    for item in result.get("items", []):
        if isinstance(item, dict) and item.get("verdict") in codes and \
                isinstance(item.get("name"), str):
            out[item["name"]] = codes[item["verdict"]]
    return out


class LastCheckWatcher:
    """Keeps :class:`daemon.state.DaemonState` in step with the saved result file.

    ``poll(state)`` costs nothing more than a clock read between ``min_interval_s`` and one
    ``stat()`` after it, so the processing loop can call it every pass; the file is re-read
    only when its modification time or size changes (a check run while the daemon runs shows
    up in the metrics within a second).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 min_interval_s: float = 1.0) -> None:
        self.path = Path(path) if path is not None else default_result_path()
        self.min_interval_s = min_interval_s
        self._sig: tuple[int, int] | None = None
        self._next = 0.0

    def poll(self, state: Any) -> bool:
        """Update ``state.check_results``/``check_timestamp``; True if they changed."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.min_interval_s
        try:
            st = self.path.stat()
        except OSError:
            return False
        sig = (st.st_mtime_ns, st.st_size)
        if sig == self._sig:
            return False
        self._sig = sig
        return apply_last_check(state, load_last_check(self.path))

    def __call__(self, state: Any) -> bool:
        return self.poll(state)


def apply_last_check(state: Any, result: dict[str, Any] | None) -> bool:
    """Copy a result's verdicts and time into a DaemonState (its metrics hook)."""
    if result is None:
        return False
    ts = result.get("unix_time")
    state.check_results = check_verdicts(result)
    state.check_timestamp = float(ts) if isinstance(ts, int | float) else None
    return True


# -- the check ------------------------------------------------------------------------------


class Check:
    """One run of the check: opens the devices, runs the tests, collects the items."""

    def __init__(self, args: argparse.Namespace, cfg: Any, sd: Any, interactive: bool) -> None:
        self.args = args
        self.cfg = cfg
        self.sd = sd
        self.interactive = interactive
        self.det = cfg.detectors
        self.cs = getattr(cfg, "check", None) or CheckSettings()
        self.items: list[Item] = []
        self.devices: dict[str, Any] = {}
        self.mic: Recorder | None = None
        self.far: Recorder | None = None
        self.mic_source: str | None = None
        self.far_source: str | None = None
        self.speech_target: OutputTarget | None = None
        self._silence_zero = False
        self._silence_level: float | None = None
        self._speech_rms: float | None = None
        self._speech_zero = True

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def prompt(self, text: str) -> None:
        if self.interactive:
            self.say(f"{text}  [press Enter]")
            sys.stdin.readline()
        else:
            self.say(text)

    # -- devices --------------------------------------------------------------------------

    def _open(self, name: str, spec: str | int, key: str, role: str, item: str) -> Recorder | None:
        from daemon.capture import CaptureStream
        from daemon.devices import DeviceError
        from daemon.state import StreamHealth

        cap = self.cfg.capture
        info: dict[str, Any] = {"spec": spec, "name": None, "rate_hz": cap.samplerate_hz}
        self.devices[name] = info
        stream = CaptureStream(name, spec, key, role, cap, StreamHealth())
        try:
            stream.open(self.sd)
        except DeviceError as exc:
            self.items.append(Item(item, Verdict.FAIL, None, None, None,
                                   f"The {role} device is missing: {exc}",
                                   f"Plug the headset in, or set [capture] {key} (or --"
                                   f"{'mic' if role == 'mic' else 'far-end'}) to one of the "
                                   "devices listed; `callwatch devices` shows them"))
            return None
        except Exception as exc:  # PortAudioError: exists but will not open
            stream.close()
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.items.append(Item(item, Verdict.FAIL, None, "Hz", cap.samplerate_hz,
                                   f"The {role} device {spec!r} does not open at "
                                   f"{cap.samplerate_hz} Hz: {text}",
                                   "Close other programs holding the device exclusively, or set "
                                   "[capture] samplerate_hz = 0 (the device's own rate)"))
            return None
        choice = stream.choice
        info["name"] = choice.label if choice is not None else str(spec)
        info["rate_hz"] = stream.rate
        return Recorder(stream)

    def check_devices(self) -> None:
        cap = self.cfg.capture
        mic_spec = self.args.mic if self.args.mic is not None else cap.mic_device
        far_spec = self.args.far_end if self.args.far_end is not None else cap.far_end_device
        self.mic = self._open("mic", mic_spec, "mic_device", "mic", "mic_device")
        self.far = self._open("far_end", far_spec, "far_end_device", "far end", "far_end_device")
        live = [r for r in (self.mic, self.far) if r is not None]
        wait_first_audio(live, FIRST_AUDIO_TIMEOUT_S)
        from daemon.devices import stream_sources

        where = stream_sources() or {}
        for rec, name, item, role in ((self.mic, "mic", "mic_device", "mic"),
                                      (self.far, "far_end", "far_end_device", "far end")):
            if rec is None:
                continue
            label = self.devices[name]["name"]
            source = where.get(rec.stream.name)
            self.devices[name]["source"] = source
            if name == "mic":
                self.mic_source = source
            else:
                self.far_source = source
            if rec.callbacks == 0:
                self.items.append(Item(item, Verdict.FAIL, None, None, None,
                                       f"The {role} device {label} opened but delivers no audio "
                                       f"within {FIRST_AUDIO_TIMEOUT_S:.0f} s",
                                       "The source is suspended or stalled: re-plug the headset "
                                       "or restart the sound server (systemctl --user restart "
                                       "pipewire-pulse / pulseaudio -k)"))
                rec.close()
                if name == "mic":
                    self.mic = None
                else:
                    self.far = None
                continue
            on = f" (source {source})" if source else ""
            self.items.append(Item(item, Verdict.PASS, float(rec.rate), "Hz",
                                   float(self.cfg.capture.samplerate_hz) or None,
                                   f"The {role} device {label}{on} delivers audio at "
                                   f"{rec.rate} Hz", extra={"device": label}))

    # -- silence --------------------------------------------------------------------------

    def silence_test(self) -> tuple[np.ndarray | None, float | None]:
        if self.mic is None:
            for n in ("mic_signal", "noise", "hum", "dc_offset"):
                self.items.append(Item(n, Verdict.SKIP, None, None, None,
                                       "Not measured: no mic"))
            return None, None
        secs = max(1.0, float(self.args.silence_s))
        self.prompt(f"Silence test: please stay quiet for {secs:.0f} s.")
        (s, e), = record([self.mic], secs)
        x = self.mic.samples(s, e)
        rate = self.mic.rate
        floor = noise_floor_dbfs(x, rate)
        self._silence_zero = is_digital_silence(x)
        self._silence_level = floor
        self.items.append(judge_noise(floor, self.det, self.cs))
        self.items.append(judge_hum(measure_hum(x, rate), self.cs))
        self.items.append(judge_dc(dc_offset(x), self.cs))
        return x, floor

    # -- speech ---------------------------------------------------------------------------

    def speech_test(self) -> SpeechMeasure | None:
        if self.mic is None:
            return None
        args = self.args
        rate = self.mic.rate
        if args.speech:
            import soundfile as sf

            data, file_rate = sf.read(args.speech, dtype="float32", always_2d=True)
            clip = data.mean(axis=1)[: round(SPEECH_MAX_S * file_rate)]
            clip = resample(clip, file_rate, rate).astype(np.float32)
            target = self.speech_target
            self.say(f"Speech test: playing {args.speech} into {target.label}.")
            player = Player(self.sd, target, clip, rate, lead_s=0.1)
            self.mic.drain()
            start = self.mic.total
            player.play([self.mic])
            (_, _), = record([self.mic], 0.3)
            x = self.mic.samples(start)
        elif self.interactive:
            secs = max(2.0, float(args.speech_s))
            self.prompt(f"Speech test: when you press Enter, read this sentence aloud at your "
                        f"normal call voice ({secs:.0f} s):\n\n    {SENTENCE}\n")
            (s, e), = record([self.mic], secs)
            x = self.mic.samples(s, e)
        else:
            return None
        self._speech_rms = float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) \
            if len(x) else 0.0
        self._speech_zero = is_digital_silence(x)
        return measure_speech(x, rate, self.det.clip_level)

    # -- playback -------------------------------------------------------------------------

    def playback_test(self, speaker: OutputTarget | None) -> None:
        if speaker is None or self.mic is None:
            reason = "no mic" if self.mic is None else "no speaker"
            for n in ("echo", "latency", "far_end_route"):
                self.items.append(Item(n, Verdict.SKIP, None, None, None,
                                       f"Not measured: {reason}"))
            return
        rate = self.mic.rate
        burst = band_limited_noise(rate, 1.0, self.cs.test_signal_dbfs)
        self.say(f"Playback test: a short noise burst out of {speaker.label}.")
        recs = [r for r in (self.mic, self.far) if r is not None]
        for r in recs:
            r.drain()
        starts = {id(r): r.total for r in recs}
        try:
            player = Player(self.sd, speaker, burst, rate)
            player.play(recs)
        except Exception as exc:
            self.items.append(Item("speaker_device", Verdict.FAIL, None, None, None,
                                   f"The speaker {speaker.label} does not play: {exc}",
                                   "Check the headset's output in the sound settings, or pass "
                                   "--speaker"))
            for n in ("echo", "latency", "far_end_route"):
                self.items.append(Item(n, Verdict.SKIP, None, None, None,
                                       "Not measured: the speaker does not play"))
            return
        self.items.append(Item("speaker_device", Verdict.PASS, None, None, None,
                               f"The speaker {speaker.label} plays"
                               + (f" ({player.underflows} underflows)" if player.underflows
                                  else ""), extra={"device": speaker.label}))
        record(recs, PLAY_TAIL_S)
        mic_x = self.mic.samples(starts[id(self.mic)])
        cp = measure_coupling(burst, mic_x, rate)
        self.items.append(judge_echo(cp, self.det, self.cs))
        far_cp: Coupling | None = None
        if self.far is not None:
            far_x = self.far.samples(starts[id(self.far)])
            ref = resample(burst, rate, self.far.rate)
            far_cp = measure_coupling(ref, far_x, self.far.rate)
        delay_ms: float | None = None
        path = "mic"
        if player.start_time is not None:
            if cp.detected:
                t = self.mic.time_of(starts[id(self.mic)] + cp.delay_samples)
            elif far_cp is not None and far_cp.detected and self.far is not None:
                path = "far-end capture"
                t = self.far.time_of(starts[id(self.far)] + far_cp.delay_samples)
            else:
                t = None
            if t is not None:
                delay_ms = (t - player.start_time) * 1000.0
        self.items.append(judge_latency(delay_ms, path, self.cs))
        self.items.append(judge_far_end_route(
            far_cp, self.cs, speaker.label, str(self.devices.get("far_end", {}).get("name"))))

    # -- all ------------------------------------------------------------------------------

    def run(self) -> None:
        """Every test in order; raises DeviceError only for a --speech-sink naming no sink."""
        self.check_devices()
        speaker: OutputTarget | None = None
        if not self.args.no_playback or (self.args.speech and not self.args.speech_sink):
            try:
                speaker = resolve_output(self.sd, self.args.speaker, self.far_source)
                self.devices["speaker"] = {"spec": self.args.speaker, "name": speaker.label}
            except Exception as exc:
                self.items.append(Item("speaker_device", Verdict.FAIL, None, None, None,
                                       f"No speaker to play the test on: {exc}",
                                       "Pass --speaker with one of the output devices listed"))
        self.speech_target = speaker
        try:
            if self.args.speech_sink:
                self.speech_target = resolve_output(
                    self.sd, f"pulse:{self.args.speech_sink}", None, "--speech-sink")
                self.devices["speech_sink"] = self.args.speech_sink
            _, floor = self.silence_test()
            sp = None
            if self.args.speech and self.speech_target is None:
                self.say("Speech test skipped: no output to play --speech on.")
            else:
                sp = self.speech_test()
            muted, vol = source_state(self.mic_source)
            if self.mic is not None:
                level = self._silence_level if self._silence_level is not None else -120.0
                zero = self._silence_zero
                if sp is not None and sp.samples:
                    from dsp.levels import amplitude_dbfs

                    level = max(level, amplitude_dbfs(self._speech_rms or 0.0))
                    zero = zero and self._speech_zero
                self.items.insert(self._index_after("far_end_device"),
                                  judge_mic_signal(level, zero, self.det, self.mic_source, muted))
            if self.mic is not None:
                self.items.append(judge_speech_level(sp, self.det, self.cs, vol))
                self.items.append(judge_clipping(sp, self.det, vol))
                self.items.append(judge_snr(sp, floor, self.det, self.cs))
            else:
                for n in ("mic_level", "clipping", "snr"):
                    self.items.append(Item(n, Verdict.SKIP, None, None, None,
                                           "Not measured: no mic"))
            if not self.args.no_playback:
                self.playback_test(speaker)
        finally:
            for r in (self.mic, self.far):
                if r is not None:
                    r.close()

    def _index_after(self, name: str) -> int:
        for i, it in enumerate(self.items):
            if it.name == name:
                return i + 1
        return len(self.items)


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


def _cannot_run(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"schema": SCHEMA, "result": "error", "exit_code": EXIT_CANNOT_RUN,
                          "error": message, "items": []}))
    print(f"callwatch check: {message}", file=sys.stderr)
    return EXIT_CANNOT_RUN


def main(args: argparse.Namespace) -> int:
    from daemon.config import ConfigError, load_config, resolve_path

    try:
        cfg = load_config(resolve_path(args.config))
    except ConfigError as exc:
        print(f"callwatch check: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for flag, v, lo, hi in (("--silence-s", args.silence_s, 1, 30),
                            ("--speech-s", args.speech_s, 2, 30)):
        if not lo <= v <= hi:
            print(f"callwatch check: {flag} {v}: must be between {lo} and {hi}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if args.speech:
        import soundfile as sf

        try:
            sf.info(args.speech)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreadable"
            print(f"callwatch check: --speech {args.speech}: {reason}; give a WAV or FLAC "
                  "speech recording", file=sys.stderr)
            return EXIT_BAD_INPUT
    interactive = not args.non_interactive
    if interactive and not sys.stdin.isatty():
        print("callwatch check: stdin is not a terminal; running non-interactively "
              "(--non-interactive)", file=sys.stderr)
        interactive = False
    try:
        import sounddevice as sd
    except OSError as exc:
        return _cannot_run(args, f"{exc}; install Debian's libportaudio2 and libasound2-plugins")
    from daemon.devices import DeviceError, list_input_devices

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
        print(f"callwatch check: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    mode = "interactive" if interactive else "non-interactive"
    result = build_result(check.items, check.devices, started, wall, mode, cfg.agent_id)
    if not args.no_save:
        try:
            save_result(result)
        except OSError as exc:
            print(f"callwatch check: cannot save the result to {default_result_path()}: "
                  f"{exc.strerror}; the daemon will not export it", file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        print(render_text(result))
    sys.stdout.flush()
    return int(result["exit_code"])
