"""The four steps of one ``callwatch check`` run, on the devices ``callwatch run`` would use.

:class:`Check` opens the mic and the far end through the daemon's own capture streams, runs
the silence, speech and playback tests in order and collects one :class:`Item` per thing it
judged; the command line around it (:mod:`daemon.check.cli`) turns the items into the
report, the exit code and the saved result.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np
import soundfile as sf

from daemon.capture import CaptureStream
from daemon.check.audio import (
    OutputTarget,
    Player,
    Recorder,
    record,
    resample,
    resolve_output,
    source_state,
    wait_first_audio,
)
from daemon.check.judge import (
    CheckSettings,
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
)
from daemon.check.measure import (
    Coupling,
    SpeechMeasure,
    band_limited_noise,
    dc_offset,
    is_digital_silence,
    measure_coupling,
    measure_hum,
    measure_speech,
    noise_floor_dbfs,
)
from daemon.check.result import Item, Verdict
from daemon.config import Config
from daemon.device_choice import DeviceError, DeviceNotListed, NoInputDevices
from daemon.devices import pulse_sources, stream_sources
from daemon.state import StreamHealth
from dsp.levels import amplitude_dbfs

SENTENCE = ("Thank you for calling. My name is Alex, and I will be glad to help you with "
            "your order today.")
FIRST_AUDIO_TIMEOUT_S = 3.0
"""A stream that delivers nothing for this long after opening is stalled (an idle source may
take ~2 s to start)."""
PLAY_TAIL_S = 0.6
"""Capture kept after the burst: room for the echo path delay (the detectors search 0.3 s)."""
SPEECH_MAX_S = 15.0
ITEM_ORDER = ("mic_device", "far_end_device", "mic_signal", "noise", "hum", "dc_offset",
              "mic_level", "clipping", "snr", "speaker_device", "echo", "latency",
              "far_end_route")
"""The report's order, as docs/check.md documents it. Items are found in another order (a
missing far end fails before the mic's pass is known, ``mic_signal`` needs the speech test),
so :meth:`Check.run` sorts them into this one at the end."""
OPTIONS = {"mic_device": "--mic", "far_end_device": "--far-end"}
"""The command-line option that overrides each ``[capture]`` key."""


class Check:
    """One run of the check: opens the devices, runs the tests, collects the items."""

    def __init__(self, args: argparse.Namespace, cfg: Config, sd: Any, interactive: bool) -> None:
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
        self._mic_silent = False
        """``mic_signal`` failed: the items measured on the mic are skipped."""
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

    def _open(self, name: str, spec: str | int, key: str, role: str, item: str,
              from_cli: bool = False) -> Recorder | None:
        cap = self.cfg.capture
        info: dict[str, Any] = {"spec": spec, "name": None, "rate_hz": cap.samplerate_hz}
        self.devices[name] = info
        stream = CaptureStream(name, spec, key, role, cap, StreamHealth())
        try:
            stream.open(self.sd)
        except DeviceError as exc:
            option = OPTIONS[key]
            where = (f"pass {option} with" if from_cli
                     else f"set [capture] {key} (or {option}) to")
            self.items.append(Item(item, Verdict.FAIL, None, None, None,
                                   f"The {role} device is missing: "
                                   + missing_device_text(exc, spec, key, from_cli),
                                   f"Plug the headset in, or {where} one of the devices or "
                                   "sources listed; `callwatch devices` shows them"))
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
        mic_cli, far_cli = self.args.mic is not None, self.args.far_end is not None
        mic_spec = self.args.mic if mic_cli else cap.mic_device
        far_spec = self.args.far_end if far_cli else cap.far_end_device
        self.mic = self._open("mic", mic_spec, "mic_device", "mic", "mic_device", mic_cli)
        self.far = self._open("far_end", far_spec, "far_end_device", "far end", "far_end_device",
                              far_cli)
        live = [r for r in (self.mic, self.far) if r is not None]
        wait_first_audio(live, FIRST_AUDIO_TIMEOUT_S)
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
        self._silence_zero = is_digital_silence(x)
        # Zeros measure nothing: no floor, no hum, no offset (skips, not -120 dBFS passes).
        floor = None if self._silence_zero else noise_floor_dbfs(x, rate)
        self._silence_level = floor
        self.items.append(judge_noise(floor, self.det, self.cs))
        self.items.append(judge_hum(measure_hum(x, rate), self.cs))
        self.items.append(judge_dc(None if self._silence_zero else dc_offset(x), self.cs))
        return x, floor

    # -- speech ---------------------------------------------------------------------------

    def speech_test(self) -> SpeechMeasure | None:
        if self.mic is None:
            return None
        args = self.args
        rate = self.mic.rate
        if args.speech:
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
        self._skip_without_mic_signal("echo")
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
            far_cp, self.cs, speaker.label, str(self.devices.get("far_end", {}).get("name")),
            player.underflows))

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
                    level = max(level, amplitude_dbfs(self._speech_rms or 0.0))
                    zero = zero and self._speech_zero
                signal = judge_mic_signal(level, zero, self.det, self.mic_source, muted)
                self.items.append(signal)
                self._mic_silent = signal.verdict is Verdict.FAIL
                self._skip_without_mic_signal("noise", "dc_offset")
            if self.mic is not None:
                self.items.append(judge_speech_level(sp, self.det, self.cs, vol))
                self.items.append(judge_clipping(sp, self.det, vol))
                self.items.append(judge_snr(sp, floor, self.det, self.cs,
                                            floor_silent=self._silence_zero))
            else:
                for n in ("mic_level", "clipping", "snr"):
                    self.items.append(Item(n, Verdict.SKIP, None, None, None,
                                           "Not measured: no mic"))
            if not self.args.no_playback:
                self.playback_test(speaker)
            self.items.sort(key=_rank)
        finally:
            for r in (self.mic, self.far):
                if r is not None:
                    r.close()

    def _skip_without_mic_signal(self, *names: str) -> None:
        """A mic that gives no signal (``mic_signal`` failed) measures nothing: its noise
        floor of -120 dBFS and "no speaker sound reaches the mic" would read as passes, in
        the report and on the fleet's board. Those items become skips."""
        if not self._mic_silent:
            return
        for i, it in enumerate(self.items):
            if it.name in names and it.verdict is not Verdict.SKIP:
                self.items[i] = Item(it.name, Verdict.SKIP, None, None, None,
                                     "Not measured: the mic gives no signal (see mic_signal)")


def _rank(item: Item) -> int:
    """An item's place in :data:`ITEM_ORDER` (an unknown one goes last)."""
    return ITEM_ORDER.index(item.name) if item.name in ITEM_ORDER else len(ITEM_ORDER)


def missing_device_text(exc: DeviceError, spec: str | int, key: str, from_cli: bool) -> str:
    """The device resolver's message, worded for where the value came from and listing all
    a user can pass. The resolver names the config key; a value typed as ``--mic`` is named
    as such. PortAudio lists only its own PCMs ("pulse", "default"), so the sound server's
    sources are added as ``callwatch devices`` lists them: what ``pulse:NAME`` can open."""
    text = str(exc)
    config_where = f"[capture] {key} = {json.dumps(spec)}"
    if from_cli and text.startswith(config_where):
        text = f"{OPTIONS[key]} {json.dumps(spec)}" + text[len(config_where):]
    if isinstance(exc, DeviceNotListed) and not isinstance(exc, NoInputDevices):
        sources = pulse_sources()
        if sources:
            text += ("; PulseAudio sources (pass as pulse:NAME): "
                     + ", ".join(f'"{s}"' for s in sources))
    return text
