"""Audio I/O of ``callwatch check``: recording through the daemon's capture streams, playing
a test buffer with a known start time, and asking the sound server about a source.

Capture reuses :class:`daemon.capture.CaptureStream` (the same device resolution, stream
options and ``PULSE_PROP`` tagging as ``callwatch run``), read through the same
:class:`~daemon.epoch.StreamReader`, so the check opens exactly what the daemon would.
Output goes through PortAudio with at least 50 ms of latency: through the ALSA ``pulse``
plugin anything lower underruns, and full-duplex ``playrec`` returns garbage.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import numpy as np

from daemon.capture import CaptureStream
from daemon.device_choice import DeviceError, by_name
from daemon.devices import pactl
from daemon.epoch import StreamReader
from dsp.resample import Resampler

PLAY_LEAD_S = 0.25
"""Silence before the played signal, so the output stream is running when it starts."""
OUTPUT_LATENCY_S = 0.1
"""Output streams need >= 0.05 s through the ALSA pulse plugin or they underrun."""


# -- capture --------------------------------------------------------------------------------


class Recorder:
    """A running capture stream (opened through daemon.capture) and everything it delivered."""

    def __init__(self, stream: CaptureStream) -> None:
        self.stream = stream
        self.reader = StreamReader()
        self.reader.switch(stream.epoch)
        self.chunks: list[np.ndarray] = []
        self.total = 0
        self.stamps: list[tuple[int, float]] = []

    @property
    def rate(self) -> int:
        return int(self.stream.rate)

    def drain(self) -> None:
        self.stamps.extend(self.reader.read_timestamps())
        x = self.reader.read_samples()
        if len(x):
            self.chunks.append(x)
            self.total += len(x)

    def samples(self, start: int, end: int | None = None) -> np.ndarray:
        if len(self.chunks) > 1:
            self.chunks = [np.concatenate(self.chunks)]
        x = self.chunks[0] if self.chunks else np.zeros(0, np.float32)
        return x[start:end]

    def time_of(self, n: float) -> float | None:
        """Host time (``time.monotonic``) at which sample ``n`` was captured."""
        if not self.stamps:
            return None
        a = np.asarray(self.stamps, dtype=np.float64)
        offset = float(np.median(a[:, 1] - a[:, 0] / self.rate))
        return offset + n / self.rate

    @property
    def callbacks(self) -> int:
        ep = self.stream.epoch
        return 0 if ep is None else int(ep.callbacks)

    def close(self) -> None:
        self.stream.close()


def record(recorders: list[Recorder], seconds: float) -> list[tuple[int, int]]:
    """Capture ``seconds`` more on every recorder; ``(start, end)`` sample range of each."""
    for r in recorders:
        r.drain()
    starts = [r.total for r in recorders]
    deadline = time.monotonic() + seconds + 2.0
    while time.monotonic() < deadline:
        time.sleep(0.05)
        for r in recorders:
            r.drain()
        if all(r.total - s >= seconds * r.rate for r, s in zip(recorders, starts, strict=True)):
            break
    return [(s, min(r.total, s + round(seconds * r.rate)))
            for r, s in zip(recorders, starts, strict=True)]


def wait_first_audio(recorders: list[Recorder], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(r.callbacks for r in recorders):
        time.sleep(0.02)
    for r in recorders:
        r.drain()


# -- output ---------------------------------------------------------------------------------


class OutputTarget:
    """Where the playback test (or --speech without a route) is played."""

    def __init__(self, index: int, name: str, pulse_sink: str | None) -> None:
        self.index = index
        self.name = name
        self.pulse_sink = pulse_sink

    @property
    def label(self) -> str:
        return f"pulse:{self.pulse_sink}" if self.pulse_sink else self.name


def pulse_sinks() -> list[str] | None:
    out = pactl("list", "short", "sinks")
    if out is None:
        return None
    return [line.split("\t")[1] for line in out.splitlines() if line.count("\t") >= 1]


def _outputs(sd: Any) -> list[dict[str, Any]]:
    return [d for d in sd.query_devices() if d["max_output_channels"] > 0]


def _choices(outs: list[dict[str, Any]]) -> str:
    """What an output spec can name: PortAudio's outputs (only "pulse" and "default" on a
    sound server) and the server's sinks, which is what the user knows the headset by."""
    names = ", ".join(f'{d["index"]} "{d["name"]}"' for d in outs) or "none"
    sinks = pulse_sinks()
    if not sinks:
        return f"output devices: {names}"
    return (f"output devices: {names}; sinks (pass as pulse:SINK): "
            + ", ".join(f'"{s}"' for s in sinks))


def resolve_output(sd: Any, spec: str | None, far_end_source: str | None,
                   what: str = "--speaker") -> OutputTarget:
    """An output spec -> device; the default plays into the sink the far end monitors, so the
    playback test exercises exactly the path the customer's voice takes."""
    outs = _outputs(sd)
    names = ", ".join(f'{d["index"]} "{d["name"]}"' for d in outs) or "none"

    def pulse_pcm(sink: str) -> OutputTarget:
        known = pulse_sinks()
        if known is not None and sink not in known:
            raise DeviceError(f"{what} pulse:{sink}: no such sink; sinks: {', '.join(known)}")
        for want in ("pulse", "default"):
            for d in outs:
                if d["name"] == want:
                    return OutputTarget(int(d["index"]), d["name"], sink)
        raise DeviceError(f"{what} pulse:{sink}: no \"pulse\" or \"default\" output PCM; "
                          f"output devices: {names}")

    if spec is None:
        if far_end_source and far_end_source.endswith(".monitor"):
            return pulse_pcm(far_end_source[: -len(".monitor")])
        default_out = sd.default.device[1]
        for d in outs:
            if d["index"] == default_out or d["name"] == "default":
                return OutputTarget(int(d["index"]), d["name"], None)
        if outs:
            return OutputTarget(int(outs[0]["index"]), outs[0]["name"], None)
        raise DeviceError(f"{what}: no output device at all (is the sound server running?)")
    spec = spec.strip()
    if spec.startswith("pulse:"):
        return pulse_pcm(spec[len("pulse:"):])
    if spec.isdigit():
        for d in outs:
            if d["index"] == int(spec):
                return OutputTarget(int(d["index"]), d["name"], None)
        raise DeviceError(f"{what} {spec}: no output device with that index; "
                          f"{_choices(outs)}")
    matches = by_name(outs, spec, lambda d: d["name"])
    if len(matches) == 1:
        return OutputTarget(int(matches[0]["index"]), matches[0]["name"], None)
    if not matches:
        raise DeviceError(f"{what} {spec!r}: no output device matches; {_choices(outs)}")
    raise DeviceError(f"{what} {spec!r}: several output devices match; use the index")


class Player:
    """Plays one buffer on an output stream and notes when its first sample hits the DAC."""

    def __init__(self, sd: Any, target: OutputTarget, signal: np.ndarray, rate: int,
                 lead_s: float = PLAY_LEAD_S) -> None:
        self.lead = round(lead_s * rate)
        self.buf = np.concatenate([np.zeros(self.lead, np.float32), signal.astype(np.float32),
                                   np.zeros(round(0.1 * rate), np.float32)])
        self.pos = 0
        self.rate = rate
        self.start_time: float | None = None
        """Host time at which the signal's first sample is played (DAC time)."""
        self.underflows = 0
        self.done = False
        self._stop: type[BaseException] = sd.CallbackStop  # ends the stream from the callback
        saved = os.environ.get("PULSE_SINK")
        if target.pulse_sink:
            os.environ["PULSE_SINK"] = target.pulse_sink
        try:
            self.stream = sd.OutputStream(
                device=target.index, samplerate=rate, channels=1, dtype="float32",
                latency=OUTPUT_LATENCY_S, callback=self._callback,
                finished_callback=self._finished)
        finally:
            if saved is None:
                os.environ.pop("PULSE_SINK", None)
            else:
                os.environ["PULSE_SINK"] = saved

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic()
        if status.output_underflow:
            self.underflows += 1
        p = self.pos
        n = max(0, min(frames, len(self.buf) - p))
        outdata[:n, 0] = self.buf[p : p + n]
        outdata[n:] = 0
        if self.start_time is None and p <= self.lead < p + frames:
            dac, cur = time_info.outputBufferDacTime, time_info.currentTime
            ahead = dac - cur if dac > 0 and cur > 0 and dac >= cur else OUTPUT_LATENCY_S
            self.start_time = now + ahead + (self.lead - p) / self.rate
        self.pos = p + frames
        if self.pos >= len(self.buf):
            raise self._stop()

    def _finished(self) -> None:
        self.done = True

    def play(self, recorders: list[Recorder]) -> None:
        """Play to the end while draining the recorders."""
        self.stream.start()
        deadline = time.monotonic() + len(self.buf) / self.rate + 3.0
        try:
            while not self.done and time.monotonic() < deadline:
                time.sleep(0.03)
                for r in recorders:
                    r.drain()
        finally:
            with contextlib.suppress(Exception):
                self.stream.abort()
            with contextlib.suppress(Exception):
                self.stream.close()


def resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    """A whole clip to another rate (the project's resampler, flushed)."""
    if rate == to:
        return x
    r = Resampler(rate, to)
    return np.concatenate([r.process(x), r.flush()])


def source_state(source: str | None) -> tuple[bool | None, float | None]:
    """(muted, volume %) of a PulseAudio source, ``None`` where unknown."""
    if not source:
        return None, None
    muted: bool | None = None
    vol: float | None = None
    out = pactl("get-source-mute", source)
    if out and ":" in out:
        muted = out.split(":", 1)[1].strip().lower() == "yes"
    out = pactl("get-source-volume", source)
    if out:
        for part in out.split("/"):
            part = part.strip()
            if part.endswith("%"):
                with contextlib.suppress(ValueError):
                    vol = float(part[:-1])
                    break
    return muted, vol
