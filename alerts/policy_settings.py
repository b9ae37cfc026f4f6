"""The ``[alerts]`` table: when the policy nudges the agent, and how severe each nudge is.

Kept apart from :mod:`alerts.policy` so that the settings (a long, flat list the config loader
validates field by field) do not bury the policy's rules, and so the config loader can know
them without the policy's state machine.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from dsp.events import Kind
from dsp.settings import setting

__all__ = ["SEVERITIES", "AlertSettings", "Severity"]

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


def _severity(default: str, doc: str) -> Any:
    """A severity field; its ``choices`` let the config loader reject a misspelt value."""
    return setting(default, doc=doc, choices=SEVERITIES)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """When to nudge the agent; the ``[alerts]`` table of the config file."""

    cooldown_s: float = setting(
        60.0, 0.0, 3600.0, "at most one nudge per kind and party (who) in this window"
    )
    resolve_s: float = setting(
        3.0, 0.0, 60.0, "an alert resolves when its condition has been over for this long"
    )
    # Per-kind switches
    talk_over_enabled: bool = setting(True, doc="nudge when the agent talks over the customer")
    talk_over_by_customer_enabled: bool = setting(
        True, doc="also tell the agent when the customer talks over them"
    )
    too_quiet_enabled: bool = setting(True, doc="nudge when a party's speech level is too low")
    too_loud_enabled: bool = setting(True, doc="nudge when a party's speech level is too high")
    noise_enabled: bool = setting(True, doc="nudge on high background noise")
    clipping_enabled: bool = setting(True, doc="nudge when the audio clips (distorts)")
    echo_enabled: bool = setting(True, doc="nudge when the far end leaks back into the mic")
    silence_enabled: bool = setting(True, doc="nudge on dead air inside a call")
    mic_dead_enabled: bool = setting(True, doc="nudge when the mic looks dead or muted")
    fast_speech_enabled: bool = setting(True, doc="nudge when the agent talks fast for a while")
    monologue_enabled: bool = setting(True, doc="nudge after a long agent monologue")
    acoustic_shock_enabled: bool = setting(
        True, doc="tell the agent at once when a sudden loud sound hits their ear")
    loud_far_end_enabled: bool = setting(
        True, doc="nudge when what the agent hears is too loud (lower the headset volume)")
    exposure_enabled: bool = setting(
        True, doc="tell the agent when their daily sound exposure reaches an action value")
    # Minimum durations beyond the detector's own confirmation (0 = fire on BEGIN)
    talk_over_delay_s: float = setting(
        0.0, 0.0, 60.0, "talk-over must still go on this long after detection to nudge"
    )
    too_quiet_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a too-quiet nudge")
    too_loud_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a too-loud nudge")
    noise_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a noise nudge")
    clipping_delay_s: float = setting(
        2.0, 0.0, 600.0, "clipping must last this long after detection (a shout is not a fault)"
    )
    echo_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before an echo nudge")
    silence_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a dead-air nudge")
    mic_dead_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a dead-mic nudge")
    fast_speech_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a pace nudge")
    monologue_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before a monologue nudge")
    acoustic_shock_delay_s: float = setting(
        0.0, 0.0, 600.0, "extra wait before an acoustic-shock nudge")
    loud_far_end_delay_s: float = setting(
        0.0, 0.0, 600.0, "extra wait before a loud-far-end nudge")
    exposure_delay_s: float = setting(0.0, 0.0, 600.0, "extra wait before an exposure nudge")
    # Severities (agent stream or whole call); the customer's own levels are informational
    talk_over_severity: str = _severity("warning", "agent talks over the customer")
    talk_over_by_customer_severity: str = _severity("info", "customer talks over the agent")
    too_quiet_severity: str = _severity("warning", "agent too quiet")
    too_loud_severity: str = _severity("warning", "agent too loud")
    noise_severity: str = _severity("warning", "noise at the agent's side")
    clipping_severity: str = _severity("warning", "agent audio clipping")
    echo_severity: str = _severity("warning", "echo / speaker leak into the mic")
    silence_severity: str = _severity("info", "dead air")
    mic_dead_severity: str = _severity("critical", "dead or muted mic")
    fast_speech_severity: str = _severity("info", "agent speaking fast")
    monologue_severity: str = _severity("info", "agent monologue")
    # Hearing safety: about the agent's ear, whichever stream carried the sound
    acoustic_shock_severity: str = _severity("critical", "sudden loud sound at the agent's ear")
    loud_far_end_severity: str = _severity("warning", "what the agent hears is too loud")
    exposure_severity: str = _severity(
        "warning", "daily sound exposure reached the lower action value (80 dB(A))")
    exposure_upper_severity: str = _severity(
        "critical", "daily sound exposure reached the upper action value (85 dB(A))")
    customer_stream_severity: str = _severity(
        "info", "level, noise and clipping conditions on the customer's side"
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name.endswith("_severity") and getattr(self, f.name) not in SEVERITIES:
                raise ValueError(
                    f"{f.name} = {getattr(self, f.name)!r}: must be one of "
                    + ", ".join(SEVERITIES)
                )

    def enabled(self, kind: Kind) -> bool:
        return bool(getattr(self, f"{kind.value}_enabled"))

    def delay_s(self, kind: Kind) -> float:
        return float(getattr(self, f"{kind.value}_delay_s"))
