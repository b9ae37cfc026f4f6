"""The daemon's two audio inputs, the agent's mic and the far end: capture devices, or a
recorded call replayed in their place.

Either way each party gets a :data:`Source` whose ``epoch`` holds the ring the processing loop
reads, and whose writer (a capture thread, the replay thread) calls ``wake`` after each block
so that the loop sleeps until there is audio.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.audiofile import CallSource
from daemon.capture import CaptureStream
from daemon.config import CaptureSettings
from daemon.device_event import DeviceEvent
from daemon.portaudio import load_sounddevice
from daemon.pulse_capture import PulseBackend, PulseCaptureStream, choose_backend
from daemon.replay import ReplayFeeder, ReplayStream
from daemon.state import StreamHealth
from daemon.supervisor import Supervisor

__all__ = ["Capture", "Source", "open_capture", "open_replay"]

Source = CaptureStream | ReplayStream
"""What a party's audio is read from: a capture stream (PortAudio or PulseAudio), or a
replayed file's stand-in with the same ``epoch`` / ``up`` / ``rate`` surface."""


@dataclass(frozen=True, slots=True)
class Capture:
    """Both parties' capture streams and the supervisor that keeps them open."""

    supervisor: Supervisor
    backend: str
    """``pulse`` or ``portaudio``."""
    why: str
    """Why that backend (configured, a sound server answers, ...), for the start-up log."""
    streams: dict[str, CaptureStream]


REPLAY_MONO_FIX = ("--replay takes one stereo file, the agent on channel 0 and the customer "
                   "on channel 1: put the two sides into one, e.g. "
                   "sox -M AGENT.wav CUSTOMER.wav CALL.wav")
"""The fix for a mono ``--replay`` file: the replay takes no second file (``callwatch analyze``
does, with ``--agent``/``--customer``)."""


def open_replay(path: str, speed: float, cap: CaptureSettings, wake: Callable[[], None],
                health: Mapping[str, StreamHealth]) -> ReplayFeeder:
    """The replay of the stereo call ``path`` at ``speed``, not started yet; raises
    AudioFileError (or OSError) for a file it cannot read."""
    feeder = ReplayFeeder(CallSource(path, path), speed, cap.block_s, max(cap.ring_s, 2.0),
                          mono_fix=REPLAY_MONO_FIX)
    for name, src in (("agent", feeder.agent), ("customer", feeder.customer)):
        src.epoch.wake = wake
        health[name].device_name = f"replay:{Path(src.label).name}"
        health[name].device_up = True
    return feeder


def open_capture(cap: CaptureSettings, wake: Callable[[], None],
                 health: Mapping[str, StreamHealth],
                 events: queue.SimpleQueue[DeviceEvent]) -> Capture:
    """Both capture streams on the configured backend, opened (or retried by the supervisor,
    which reports faults and recoveries on ``events``). Raises DeviceError for a device spec
    that matches nothing, OSError without the PortAudio library."""
    backend, why = choose_backend(cap)
    sd: Any
    stream_cls: type[CaptureStream]
    if backend == "pulse":
        sd, stream_cls = PulseBackend(), PulseCaptureStream
    else:
        sd = load_sounddevice()  # raises OSError without the PortAudio library

        stream_cls = CaptureStream
    mic = stream_cls("agent", cap.mic_device, "mic_device", "mic", cap, health["agent"])
    far = stream_cls("customer", cap.far_end_device, "far_end_device", "far end", cap,
                     health["customer"])
    mic.wake = far.wake = wake
    supervisor = Supervisor([mic, far], cap, events)
    supervisor.start_initial(sd)
    return Capture(supervisor, backend, why, {"agent": mic, "customer": far})
