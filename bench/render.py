"""Turn a clean two-party timeline plus noise into a stereo WAV and its measured truth.

The truth follows DESIGN.md §4.4 (:mod:`bench.truth`): activity, speech time, talk-overs,
initiators and dead air come from each party's clean speech as written at the file's rate,
before noise, leak and clipping. Levels are measured, not assumed: the active speech level
(ITU-T P.56) of the clean speech, and the noise floor as the RMS of the noise actually added
to that channel. SNR is their difference. A noise alert is expected
when the agent's SNR is 10 dB or less, forbidden in a quiet room (floor under -60 dBFS with
no added condition), and left open in between (DESIGN.md §5 sets the alert at SNR < 15 dB
or a floor over -45 dBFS, so 10-15 dB is a matter of policy, not accuracy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.audio import resample, rms_dbfs, to_int16
from bench.compose import PARTIES, Timeline
from bench.levels import level_method
from bench.sources import RATE
from bench.truth import derive

QUIET_ROOM_MAX_DBFS = -60.0
NOISE_ALERT_SNR_DB = 10.0
TRUTH_SCHEMA = "callwatch.bench.truth/2"


@dataclass
class Mix:
    """What goes into each channel besides the party's own speech (at the file rate)."""

    rate: int
    noise: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. speaker leak
    line: dict[str, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)
    """Per channel, what the line does to the finished mix (e.g. a codec round trip)."""
    conditions: list[str] = field(default_factory=list)
    quiet_room: bool = True
    info: dict[str, object] = field(default_factory=dict)


def speech_at_rate(tl: Timeline, rate: int, gains_db: dict[str, float]) -> dict[str, np.ndarray]:
    """Each party's clean speech at ``rate`` with its call gain applied."""
    n = round(tl.duration_s * rate)
    out = {}
    for p in PARTIES:
        y = resample(tl.tracks[p], RATE, rate) * 10 ** (gains_db[p] / 20)
        out[p] = np.pad(y, (0, max(0, n - len(y))))[:n]
    return out


def render(tl: Timeline, speech: dict[str, np.ndarray], mix: Mix, wav: Path,
           meta: dict[str, object]) -> dict[str, object]:
    """Write ``wav`` (int16 stereo: ch0 agent, ch1 customer) and return its truth."""
    n = len(speech["agent"])
    truth = derive(speech, mix.rate)
    parties: dict[str, dict[str, object]] = truth.pop("parties")  # type: ignore[assignment]
    chans = []
    clipped: list[str] = []
    streams: dict[str, dict[str, object]] = {}
    for p in PARTIES:
        noise = mix.noise.get(p, np.zeros(n))[:n]
        y = speech[p] + noise + mix.extra.get(p, np.zeros(n))[:n]
        if np.max(np.abs(y), initial=0.0) >= 1.0:
            clipped.append(p)
        if p in mix.line:
            y = mix.line[p](y)
        chans.append(y)
        level = parties[p]["active_level_dbfs"]
        floor = rms_dbfs(noise)
        streams[p] = {
            "active_level_dbfs": level,
            "noise_floor_dbfs": round(floor, 2),
            "snr_db": None if level is None else round(float(level) - floor, 2),  # type: ignore[arg-type]
            "speech_s": parties[p]["speech_s"],
        }
    stereo = np.stack(chans, axis=1)
    peak = float(np.max(np.abs(stereo))) if stereo.size else 0.0
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav, to_int16(stereo), mix.rate, subtype="PCM_16")
    agent = streams["agent"]
    snr = agent["snr_db"]
    if snr is not None and snr <= NOISE_ALERT_SNR_DB:
        expected: bool | None = True
    elif mix.quiet_room and agent["noise_floor_dbfs"] < QUIET_ROOM_MAX_DBFS:  # type: ignore[operator]
        expected = False
    else:
        expected = None
    return {
        "schema": TRUTH_SCHEMA,
        "file": wav.name,
        "duration_s": round(n / mix.rate, 3),
        "sample_rate_hz": mix.rate,
        "conditions": mix.conditions,
        "quiet_room": mix.quiet_room,
        "noise_alert_expected": expected,
        "peak_dbfs": round(20 * np.log10(max(peak, 1e-9)), 2),
        "agent": agent,
        "customer": streams["customer"],
        "mic_works": True,
        "clipped": clipped,
        **truth,
        "level_method": level_method(),
        **mix.info,
        **meta,
        "placed": tl.placed,
    }
