"""Audio devices: listing them, choosing one from the config, and asking the sound server
where a stream really is.

PortAudio (through sounddevice) reaches PulseAudio and PipeWire via the ALSA ``pulse`` plugin,
so the devices it lists are ALSA PCMs: ``default``, ``pulse`` and any named PCMs from
``~/.asoundrc`` (e.g. ``headset_mic``). A PulseAudio source that has no ALSA PCM of its own is
still reachable: ``pulse:SOURCE`` opens the ``pulse`` PCM with ``PULSE_SOURCE=SOURCE``. The far
end's default is exactly that: ``pulse:<default sink>.monitor``, i.e. what the agent hears.

``pactl`` is optional: without it (or without a PulseAudio-compatible server) devices are
listed and opened by PortAudio alone, monitors are recognised by name, and the "stream moved"
check is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from daemon.command import EXIT_CANNOT_RUN, CommandError, command
from daemon.device_choice import (
    DeviceChoice,
    DeviceError,
    DeviceNotListed,
    NoInputDevices,
    by_name,
)
from daemon.portaudio import load_sounddevice
from daemon.pulse_streams import PlayingApp, PulseUnavailable, server_view

PACTL_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class InputDevice:
    """One capture device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    channels: int
    default_samplerate_hz: int
    monitor: bool
    """Captures what a sink plays (loopback), i.e. suitable as the far end."""
    default: bool


# -- PulseAudio (pactl) ---------------------------------------------------------------------


def pactl(*args: str) -> str | None:
    """``pactl`` output, or ``None`` when there is no pactl or no server answers."""
    exe = shutil.which("pactl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, *args], capture_output=True, text=True,
                             timeout=PACTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def pulse_sources() -> list[str] | None:
    """Names of the server's sources (monitors end in ``.monitor``), or ``None``."""
    out = pactl("list", "short", "sources")
    if out is None:
        return None
    return [line.split("\t")[1] for line in out.splitlines() if line.count("\t") >= 1]


def default_sink_monitor() -> str | None:
    """The monitor source of the default sink: what the agent hears."""
    out = pactl("get-default-sink")
    if not out or not out.strip():
        return None
    return f"{out.strip()}.monitor"


def _parse_blocks(text: str, header: str) -> list[dict[str, str]]:
    """``pactl list source-outputs`` as one dict per object (properties flattened)."""
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if raw.startswith(header):
            cur = {"#": raw.split("#", 1)[-1].strip()}
            blocks.append(cur)
        elif cur is not None and line:
            if " = " in line:
                k, v = line.split(" = ", 1)
                cur[k.strip()] = v.strip().strip('"')
            elif ":" in line:
                k, v = line.split(":", 1)
                cur.setdefault(k.strip(), v.strip())
    return blocks


def stream_sources(tag_key: str = "callwatch.stream") -> dict[str, str] | None:
    """Where this process's tagged record streams are: ``{tag: source name}``.

    Each capture stream is opened with ``PULSE_PROP='callwatch.stream=<tag>'`` so it can be told
    apart from its sibling; this is how a silent move (the server re-routing a stream when its
    source disappears) is seen. ``None`` when pactl or the server is unavailable.
    """
    text = pactl("list", "source-outputs")
    if text is None:
        return None
    src_names = {}
    short = pactl("list", "short", "sources") or ""
    for line in short.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            src_names[parts[0]] = parts[1]
    pid = str(os.getpid())
    out: dict[str, str] = {}
    for b in _parse_blocks(text, "Source Output #"):
        if b.get("application.process.id") != pid or tag_key not in b:
            continue
        src = b.get("Source", "")
        out[b[tag_key]] = src_names.get(src, src)
    return out


# -- PortAudio ------------------------------------------------------------------------------


def list_input_devices(sd: Any) -> list[InputDevice]:
    """Every PortAudio device with inputs, monitors marked."""
    hostapis = sd.query_hostapis()
    try:
        default_in = sd.default.device[0]
    except (TypeError, IndexError):
        default_in = -1
    monitors = {s for s in (pulse_sources() or []) if s.endswith(".monitor")}
    out = []
    for d in sd.query_devices():
        if d["max_input_channels"] <= 0:
            continue
        name = d["name"]
        is_monitor = "monitor" in name.lower() or name in monitors
        out.append(InputDevice(
            index=int(d["index"]), name=name, hostapi=hostapis[d["hostapi"]]["name"],
            channels=int(d["max_input_channels"]),
            default_samplerate_hz=int(d["default_samplerate"]), monitor=is_monitor,
            default=int(d["index"]) == default_in,
        ))
    return out


def _candidates(devices: list[InputDevice]) -> str:
    names = ", ".join(f'{d.index} "{d.name}"' for d in devices) or "none (is the sound server up?)"
    return f"input devices: {names}"


def resolve(sd: Any, spec: str | int, role: str, key: str) -> DeviceChoice:
    """A config device spec -> a device PortAudio can open, or :class:`DeviceError`.

    ``spec``: ``"default"``, an index, part of a device name (case-insensitive; an exact name
    wins over substrings), ``pulse:SOURCE``, or ``""`` for the far end's automatic choice.
    ``role`` and ``key`` only word the error message.
    """
    devices = list_input_devices(sd)
    where = f"[capture] {key} = {json.dumps(spec)}"
    if not devices:
        # Whatever the spec names, the machine (its sound server) is the problem.
        raise NoInputDevices(f"{where}: no input devices at all (is the sound server "
                             "running?)")

    def pulse_pcm() -> InputDevice:
        for d in devices:
            if d.name == "pulse":
                return d
        for d in devices:
            if d.name == "default":
                return d
        raise DeviceNotListed(f"{where}: no \"pulse\" or \"default\" PCM to open a "
                              f"PulseAudio source through; {_candidates(devices)}")

    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        idx = int(spec)
        for d in devices:
            if d.index == idx:
                return DeviceChoice(str(spec), d.index, d.name)
        raise DeviceNotListed(f"{where}: no input device with index {idx}; "
                              f"{_candidates(devices)}")
    spec = spec.strip()
    if spec == "":
        if role != "far end":
            spec = "default"
        else:
            monitor = default_sink_monitor()
            if monitor is not None:
                d = pulse_pcm()
                return DeviceChoice("", d.index, d.name, pulse_source=monitor)
            mons = [d for d in devices if d.monitor]
            if mons:
                return DeviceChoice("", mons[0].index, mons[0].name)
            raise DeviceNotListed(
                f"{where}: no monitor source found to capture the far end from; set "
                f"far_end_device to one of the {_candidates(devices)}")
    if spec.startswith("pulse:"):
        source = spec[len("pulse:"):]
        known = pulse_sources()
        if known is not None and source not in known:
            raise DeviceError(f"{where}: no PulseAudio source {source!r}; sources: "
                              + ", ".join(known))
        d = pulse_pcm()
        return DeviceChoice(spec, d.index, d.name, pulse_source=source)
    if spec == "default":
        for d in devices:
            if d.default or d.name == "default":
                return DeviceChoice(spec, d.index, d.name)
        return DeviceChoice(spec, devices[0].index, devices[0].name)
    matches = by_name(devices, spec, lambda d: d.name)
    if len(matches) == 1:
        return DeviceChoice(spec, matches[0].index, matches[0].name)
    if not matches:
        raise DeviceNotListed(f"{where}: no {role} device matches; {_candidates(devices)}")
    raise DeviceError(f"{where}: several devices match ({', '.join(d.name for d in matches)}); "
                      "use a longer part of the name or the index")


# -- `callwatch devices` --------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per device, one per line")


@command("devices")
def main(args: argparse.Namespace) -> int:
    try:
        sd = load_sounddevice()  # raises OSError without the PortAudio library
    except OSError as exc:
        raise CommandError(f"{exc}; install Debian's libportaudio2", EXIT_CANNOT_RUN) from None
    devices = list_input_devices(sd)
    sources = pulse_sources()
    if not devices:
        # Without a sound server PortAudio lists nothing: say so, also to a script reading
        # the JSON lines (an empty output would read as "no devices plugged in").
        problem = ("no input devices (is PulseAudio/PipeWire running, and libasound2-plugins "
                   "installed?)")
        if args.json:
            print(json.dumps({"error": problem}))
        raise CommandError(problem, EXIT_CANNOT_RUN)
    if args.json:
        for d in devices:
            print(json.dumps(asdict(d)))
        described = source_descriptions()
        for s in sources or []:
            print(json.dumps({"pulse_source": s, "monitor": s.endswith(".monitor"),
                              "spec": f"pulse:{s}", "description": described.get(s)}))
        for a in playing_apps():
            print(json.dumps({"playing_app": a.application, "binary": a.binary,
                              "sink": a.sink, "media": a.media, "sink_input": a.index}))
        return 0
    print(f"{'':2}{'idx':>3}  {'name':<28} {'host API':<10} {'in':>3} {'rate':>6}  notes")
    for d in devices:
        notes = ", ".join(n for n, on in (("monitor (far end)", d.monitor),
                                          ("default", d.default)) if on)
        mark = "*" if d.default else " "
        print(f"{mark:2}{d.index:>3}  {d.name:<28} {d.hostapi:<10} {d.channels:>3} "
              f"{d.default_samplerate_hz:>6}  {notes}")
    if sources:
        print("\nPulseAudio sources (use as \"pulse:NAME\"; a device setting matches a part "
              "of the name or of the description):")
        described = source_descriptions()
        quoted = {s: f'"{described[s]}"' if s in described else "" for s in sources}
        width, dwidth = (max(len(s) for s in sources) + 6,
                         max(len(q) for q in quoted.values()))
        for s in sources:
            print(f"  {'pulse:' + s:<{width}}  {quoted[s]:<{dwidth}}  "
                  f"{'monitor (far end)' if s.endswith('.monitor') else ''}".rstrip())
        mon = default_sink_monitor()
        if mon:
            print(f"\nfar_end_device = \"\" captures pulse:{mon} (monitor of the default sink)")
    apps = playing_apps()
    if apps:
        print("\nPlaying applications (far_end_app = name or binary records only that one):")
        for a in apps:
            print(f"  {a.application or '?':<24} binary {a.binary or '?':<16} on {a.sink}"
                  f"  ({a.media})")
    return 0


def source_descriptions() -> dict[str, str]:
    """Each source's description (what a device setting can also match, e.g. "Monitor of
    Jabra Evolve2 40 Stereo"), or none without a server or libpulse."""
    try:
        return {s.name: s.description for s in server_view().sources}
    except (PulseUnavailable, OSError):
        return {}


def playing_apps() -> list[PlayingApp]:
    """The server's playback streams (:class:`daemon.pulse_streams.PlayingApp`), or none
    without a PulseAudio-compatible server or libpulse."""
    try:
        return list(server_view(apps=True).apps)
    except (PulseUnavailable, OSError):
        return []
