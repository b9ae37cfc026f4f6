"""Detector thresholds: the defaults and their sources (see the design's threshold table).

Every field carries its unit in its name and, in its metadata, the allowed range and a help
text; the daemon's config loader validates TOML values against exactly this metadata, so a
threshold is declared once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def setting(
    default: Any, lo: float | None = None, hi: float | None = None, doc: str = "",
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A dataclass field with its allowed range (or ``choices``) and help text in the metadata."""
    return field(default=default,
                 metadata={"min": lo, "max": hi, "help": doc, "choices": choices})


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """All detector thresholds; the ``[detectors]`` table of the config file."""

    # Voice activity
    vad: str = setting("webrtc", doc="VAD engine; earshot and silero need callwatch[neural]",
                       choices=("webrtc", "earshot", "silero"))
    vad_mode: int = setting(2, 0, 3, "webrtcvad aggressiveness, 0 (lenient) to 3 (strict)")
    confirm_vad: str = setting(
        "auto", doc="neural VAD that must also hear a party in noise before a talk-over is "
        "reported: silero (needs callwatch[neural]), auto (silero if installed) or none",
        choices=("auto", "silero", "none"))
    vad_start_s: float = setting(0.1, 0.0, 1.0, "speech must last this long to start a talk spurt")
    vad_hangover_s: float = setting(0.3, 0.0, 2.0, "a talk spurt ends after this much non-speech")
    speech_margin_db: float = setting(
        6.0, 0.0, 40.0, "a speech frame must stand this far above the party's noise floor"
    )
    min_speech_dbfs: float = setting(-65.0, -90.0, 0.0, "frames quieter than this are never speech")
    remove_hum: bool = setting(
        True, doc="take mains hum (50/60 Hz) out of the agent's mic before analysis; it still "
        "counts as background noise"
    )
    # Talk-over
    min_overlap_s: float = setting(
        0.8, 0.1, 5.0, "both parties speaking at least this long is a talk-over"
    )
    # Levels (active speech level, ITU-T P.56, over a window of the party's speech)
    level_window_s: float = setting(5.0, 1.0, 60.0, "seconds of speech a level verdict needs")
    too_quiet_dbfs: float = setting(-38.0, -90.0, 0.0, "a party's level below this is too quiet")
    too_loud_dbfs: float = setting(-12.0, -90.0, 0.0, "active level above this is too loud")
    # Clipping
    clip_level: float = setting(0.99, 0.5, 1.0, "|sample| at or above this counts as clipped")
    clipping_min_ratio: float = setting(
        0.001, 0.0, 1.0, "clipped-sample ratio over one second that raises clipping"
    )
    # Background noise (measured while the party is silent)
    noise_floor_dbfs: float = setting(-45.0, -90.0, 0.0, "noise floor above this is noisy")
    min_snr_db: float = setting(15.0, 0.0, 60.0, "SNR below this is noisy")
    noise_min_s: float = setting(5.0, 0.5, 120.0, "noise must last this long (agent silent)")
    # Dead air and dead mic
    silence_min_s: float = setting(5.0, 1.0, 600.0, "both parties silent this long is dead air")
    mic_dead_dbfs: float = setting(-70.0, -120.0, -20.0, "mic below this level counts as dead")
    mic_dead_min_s: float = setting(10.0, 1.0, 600.0, "dead mic while the far end talks, seconds")
    # Echo / speaker leak
    echo_max_coupling_db: float = setting(
        -30.0, -80.0, 0.0, "far-end coupling into the mic above this (ERL below -x dB) is echo"
    )
    echo_max_delay_ms: float = setting(300.0, 10.0, 1000.0, "longest echo path searched")
    echo_min_s: float = setting(2.0, 0.5, 60.0, "coupling must persist this long to report echo")
    # Coaching (DESIGN.md §5)
    fast_speech_sps: float = setting(
        4.5, 1.0, 10.0, "agent speaking rate above this (syllables/s, ~160 wpm) is fast"
    )
    fast_speech_window_s: float = setting(
        30.0, 5.0, 120.0, "seconds of the agent's speech the pace is judged over"
    )
    monologue_max_s: float = setting(120.0, 10.0, 3600.0, "an agent turn longer than this")
    # Condition end
    resolve_s: float = setting(1.0, 0.0, 30.0, "a condition ends after this long back in range")
