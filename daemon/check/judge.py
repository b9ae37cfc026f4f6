"""The verdicts of ``callwatch check``: each measurement against its limit, with a fix.

Thresholds come from :class:`dsp.settings.DetectorSettings` where the live detectors already
have one (noise floor, too quiet, too loud, clipping, SNR, dead mic, echo coupling, echo
delay), so the check judges a headset by the same limits the daemon will nag the agent with.
Only what exists for the check alone is declared in :class:`CheckSettings`. Pure functions:
no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.check.measure import Coupling, Hum, SpeechMeasure
from daemon.check.result import Item, Verdict
from dsp.levels import amplitude_dbfs
from dsp.settings import DetectorSettings, setting


@dataclass(frozen=True, slots=True)
class CheckSettings:
    """Limits that only ``callwatch check`` uses (the rest come from DetectorSettings)."""

    target_dbfs: float = setting(
        -26.0, -60.0, 0.0, "nominal active speech level (ITU-T P.56, telephony -26 dBov)"
    )
    level_tolerance_db: float = setting(
        6.0, 1.0, 20.0, "speech further than this from the target (but inside the detector "
        "limits) is a warning"
    )
    noise_warn_margin_db: float = setting(
        6.0, 0.0, 30.0, "noise floor within this of the detector's limit is a warning"
    )
    snr_warn_db: float = setting(25.0, 0.0, 80.0, "speech-to-noise ratio below this is a warning")
    hum_warn_db: float = setting(
        10.0, 3.0, 60.0, "mains hum peak this far above the neighbouring spectrum is a warning"
    )
    hum_fail_db: float = setting(20.0, 3.0, 80.0, "... and this far above it a failure")
    hum_min_dbfs: float = setting(
        -80.0, -120.0, 0.0, "hum quieter than this (tone level) is inaudible and ignored"
    )
    dc_warn_dbfs: float = setting(-40.0, -100.0, 0.0, "DC offset above this (1 % FS) warns")
    dc_fail_dbfs: float = setting(-20.0, -100.0, 0.0, "DC offset above this (10 % FS) fails")
    leak_warn_db: float = setting(
        -40.0, -100.0, 0.0, "speaker sound in the mic above this coupling is a warning (above "
        "the detectors' echo_max_coupling_db it fails)"
    )
    latency_warn_ms: float = setting(
        200.0, 10.0, 2000.0, "speaker-to-capture delay above this is a warning (G.114 allows "
        "150 ms one-way for the whole call path)"
    )
    far_end_min_correlation: float = setting(
        0.5, 0.0, 1.0, "the far-end capture must match the played test signal this well"
    )
    test_signal_dbfs: float = setting(
        -24.0, -60.0, -6.0, "RMS level of the playback test burst (about speech level: safe)"
    )

    def __post_init__(self) -> None:
        if self.hum_fail_db < self.hum_warn_db:
            raise ValueError(f"hum_fail_db = {self.hum_fail_db}: must be at least hum_warn_db")
        if self.dc_fail_dbfs < self.dc_warn_dbfs:
            raise ValueError(f"dc_fail_dbfs = {self.dc_fail_dbfs}: must be at least "
                             "dc_warn_dbfs")


def _fmt(v: float | None, unit: str = "dBFS") -> str:
    if v is None:
        return "n/a"
    return f"{v:.1f} {unit}".replace("-", "\u2212")


def judge_mic_signal(level_dbfs: float, digital_silence: bool, d: DetectorSettings,
                     source: str | None = None, muted: bool | None = None) -> Item:
    """Dead or muted mic: digital silence, or quieter than the dead-mic level all along."""
    thr = d.mic_dead_dbfs
    where = f" {source}" if source else ""
    if muted:
        return Item("mic_signal", Verdict.FAIL, level_dbfs, "dBFS", thr,
                    f"The mic source{where} is muted",
                    f"Unmute it: pactl set-source-mute {source or '@DEFAULT_SOURCE@'} 0 "
                    "(or the headset's mute button / the sound settings)")
    if digital_silence:
        return Item("mic_signal", Verdict.FAIL, level_dbfs, "dBFS", thr,
                    "The mic delivers digital silence (every sample is zero)",
                    "The mic is muted or not connected: check the headset's mute switch, the "
                    "plug, and that the right input is selected in the sound settings")
    if level_dbfs < thr:
        return Item("mic_signal", Verdict.FAIL, level_dbfs, "dBFS", thr,
                    f"The mic is almost silent: {_fmt(level_dbfs)} (dead below {_fmt(thr)})",
                    "Check the plug and the mute switch, and raise the input volume; if it "
                    "stays silent the mic (or its cable) is faulty")
    return Item("mic_signal", Verdict.PASS, level_dbfs, "dBFS", thr,
                f"The mic delivers signal: {_fmt(level_dbfs)} (dead below {_fmt(thr)})")


NO_SIGNAL = "no signal from the mic"
"""Why an item measured on the silence test is skipped when the mic gave only zeros there:
the same words for every such item (hum, noise, dc_offset, snr), so the report reads as one
cause."""


def judge_noise(floor_dbfs: float | None, d: DetectorSettings, c: CheckSettings) -> Item:
    """``floor_dbfs`` None: the silence test was digital silence, which measures no floor
    (its -120 dBFS would pass as a perfect headset)."""
    thr = d.noise_floor_dbfs
    warn = thr - c.noise_warn_margin_db
    if floor_dbfs is None:
        return Item("noise", Verdict.SKIP, None, "dBFS", warn,
                    f"Noise floor not measured ({NO_SIGNAL})")
    # Both limits: the JSON's threshold for a pass is the nearest one, the warning level.
    msg = (f"Noise floor {_fmt(floor_dbfs)} while quiet (warning above {_fmt(warn)}, limit "
           f"{_fmt(thr)})")
    if floor_dbfs > thr:
        return Item("noise", Verdict.FAIL, floor_dbfs, "dBFS", thr, msg,
                    f"Background noise is {floor_dbfs - thr:.0f} dB over the limit: move away "
                    "from the noise (fans, open windows, neighbours), use a noise-cancelling "
                    "headset, or lower the input volume if speech is also loud")
    if floor_dbfs > warn:
        return Item("noise", Verdict.WARN, floor_dbfs, "dBFS", warn, msg,
                    f"Background noise is only {thr - floor_dbfs:.0f} dB under the limit: a "
                    "little more noise will raise noise alerts; reduce it at the source or use "
                    "a noise-cancelling headset")
    return Item("noise", Verdict.PASS, floor_dbfs, "dBFS", warn, msg)


def judge_hum(hum: Hum | None, c: CheckSettings) -> Item:
    if hum is None:
        return Item("hum", Verdict.SKIP, None, "dB", c.hum_warn_db,
                    f"Hum not measured ({NO_SIGNAL})")
    extra = {"mains_hz": hum.mains_hz, "harmonic_hz": hum.harmonic_hz,
             "hum_level_dbfs": round(hum.level_dbfs, 1)}
    where = f"{hum.mains_hz:.0f} Hz mains"
    if hum.harmonic_hz != hum.mains_hz:
        where += f" (strongest at {hum.harmonic_hz:.0f} Hz)"
    msg = f"Mains hum at {where}, {hum.prominence_db:.0f} dB above the floor"
    fix = (f"Mains hum at {hum.mains_hz:.0f} Hz, {hum.prominence_db:.0f} dB above the floor: "
           "check the USB/3.5 mm cable and ground (a ground loop through a charger, dock or "
           "monitor); try another USB port or unplug the laptop charger")
    audible = hum.level_dbfs >= c.hum_min_dbfs
    if audible and hum.prominence_db >= c.hum_fail_db:
        return Item("hum", Verdict.FAIL, hum.prominence_db, "dB", c.hum_fail_db, msg, fix, extra)
    if audible and hum.prominence_db >= c.hum_warn_db:
        return Item("hum", Verdict.WARN, hum.prominence_db, "dB", c.hum_warn_db, msg, fix, extra)
    return Item("hum", Verdict.PASS, hum.prominence_db, "dB", c.hum_warn_db,
                f"No mains hum (strongest candidate {hum.harmonic_hz:.0f} Hz of "
                f"{hum.mains_hz:.0f} Hz mains, {hum.prominence_db:.0f} dB above the floor)",
                None, extra)


def judge_dc(offset: float | None, c: CheckSettings) -> Item:
    """``offset`` None: the silence test was digital silence (no offset to speak of, and
    no evidence of a healthy ADC either)."""
    if offset is None:
        return Item("dc_offset", Verdict.SKIP, None, "dBFS", c.dc_warn_dbfs,
                    f"DC offset not measured ({NO_SIGNAL})")
    level = amplitude_dbfs(offset)
    msg = f"DC offset {offset * 100:+.2f} % of full scale ({_fmt(level)})"
    fix = ("The mic input has a DC offset: the headset's ADC or bias is faulty or a cheap "
           "adapter is in the path; try another USB port or adapter, else replace the headset")
    if level >= c.dc_fail_dbfs:
        return Item("dc_offset", Verdict.FAIL, level, "dBFS", c.dc_fail_dbfs, msg, fix)
    if level >= c.dc_warn_dbfs:
        return Item("dc_offset", Verdict.WARN, level, "dBFS", c.dc_warn_dbfs, msg, fix)
    return Item("dc_offset", Verdict.PASS, level, "dBFS", c.dc_warn_dbfs, msg)


def volume_advice(delta_db: float, volume_pct: float | None) -> str:
    """'raise the input volume to about 70 %' from a PulseAudio software volume (cubic)."""
    verb = "raise" if delta_db > 0 else "lower"
    if volume_pct is None or volume_pct <= 0:
        return f"{verb} the mic input volume by about {abs(delta_db):.0f} dB"
    # PulseAudio maps percent to gain cubically: gain_dB = 60·log10(pct/100).
    pct = volume_pct * 10 ** (delta_db / 60.0)
    if pct > 150:
        return (f"{verb} the input volume to the maximum (it is at {volume_pct:.0f} %) and move "
                "the mic closer to the mouth")
    return f"{verb} the input volume from {volume_pct:.0f} % to about {pct:.0f} %"


def judge_speech_level(sp: SpeechMeasure | None, d: DetectorSettings, c: CheckSettings,
                       volume_pct: float | None = None) -> Item:
    if sp is None:
        return Item("mic_level", Verdict.SKIP, None, "dBFS", d.too_quiet_dbfs,
                    "Speech level not measured (non-interactive run without --speech)")
    if sp.active_dbfs is None or sp.activity < 0.05:
        return Item("mic_level", Verdict.FAIL, None, "dBFS", d.too_quiet_dbfs,
                    "No speech heard during the speech test",
                    "Check that the headset mic is the selected input and not muted, and speak "
                    "during the test")
    lvl = sp.active_dbfs
    delta = c.target_dbfs - lvl
    msg = f"Speech level {_fmt(lvl)} active (target {_fmt(c.target_dbfs)})"
    if lvl < d.too_quiet_dbfs or lvl > d.too_loud_dbfs:
        thr = d.too_quiet_dbfs if lvl < d.too_quiet_dbfs else d.too_loud_dbfs
        side = "below" if delta > 0 else "above"
        return Item("mic_level", Verdict.FAIL, lvl, "dBFS", thr, msg,
                    f"Mic level is {abs(delta):.0f} dB {side} target: "
                    + volume_advice(delta, volume_pct))
    if abs(delta) > c.level_tolerance_db:
        thr = c.target_dbfs - c.level_tolerance_db if delta > 0 else \
            c.target_dbfs + c.level_tolerance_db
        side = "below" if delta > 0 else "above"
        return Item("mic_level", Verdict.WARN, lvl, "dBFS", thr, msg,
                    f"Mic level is {abs(delta):.0f} dB {side} target: "
                    + volume_advice(delta, volume_pct))
    return Item("mic_level", Verdict.PASS, lvl, "dBFS", c.target_dbfs - c.level_tolerance_db,
                msg)


def judge_clipping(sp: SpeechMeasure | None, d: DetectorSettings,
                   volume_pct: float | None = None) -> Item:
    thr = d.clipping_min_ratio * 100
    if sp is None:
        return Item("clipping", Verdict.SKIP, None, "%", thr, "Clipping not measured")
    pct = sp.clipped_ratio * 100
    msg = (f"{sp.clipped_samples} clipped samples ({pct:.3f} %), peak "
           f"{_fmt(sp.peak_dbfs)}")
    extra = {"clipped_samples": sp.clipped_samples, "peak_dbfs": round(sp.peak_dbfs, 2)}
    fix = ("The mic clips: " + volume_advice(-10.0, volume_pct)
           + " (about 10 dB less), or move the mic away from the mouth")
    if sp.clipped_ratio >= d.clipping_min_ratio:
        return Item("clipping", Verdict.FAIL, pct, "%", thr, msg, fix, extra)
    if sp.clipped_samples > 0:
        return Item("clipping", Verdict.WARN, pct, "%", 0.0, msg, fix, extra)
    return Item("clipping", Verdict.PASS, pct, "%", thr, msg, None, extra)


def judge_snr(sp: SpeechMeasure | None, floor_dbfs: float | None, d: DetectorSettings,
              c: CheckSettings, floor_silent: bool = False) -> Item:
    """``floor_silent``: the silence test was digital silence, so there is no floor to
    measure speech against (speech over -120 dBFS would pass at 90 dB and more)."""
    if floor_silent:
        return Item("snr", Verdict.SKIP, None, "dB", d.min_snr_db,
                    f"SNR not measured ({NO_SIGNAL} while quiet: no noise floor)")
    if sp is None or sp.active_dbfs is None or floor_dbfs is None:
        return Item("snr", Verdict.SKIP, None, "dB", d.min_snr_db,
                    "SNR not measured (no speech)")
    snr = sp.active_dbfs - floor_dbfs
    msg = f"Speech {snr:.0f} dB above the noise floor (limit {d.min_snr_db:.0f} dB)"
    fix = ("Speech does not stand out of the background: reduce the noise, bring the mic "
           "closer to the mouth (2-3 cm, to the side), or use a noise-cancelling headset")
    if snr < d.min_snr_db:
        return Item("snr", Verdict.FAIL, snr, "dB", d.min_snr_db, msg, fix)
    if snr < c.snr_warn_db:
        return Item("snr", Verdict.WARN, snr, "dB", c.snr_warn_db, msg, fix)
    return Item("snr", Verdict.PASS, snr, "dB", c.snr_warn_db, msg)


def judge_echo(cp: Coupling, d: DetectorSettings, c: CheckSettings) -> Item:
    fail = d.echo_max_coupling_db
    extra = {"detected": cp.detected}
    if not cp.detected:
        return Item("echo", Verdict.PASS, None, "dB", c.leak_warn_db,
                    f"No speaker sound reaches the mic (below {_fmt(cp.coupling_db, 'dB')})",
                    None, {**extra, "below_db": round(cp.coupling_db, 1)})
    v = cp.coupling_db
    msg = f"Speaker sound reaches the mic at {_fmt(v, 'dB')} (limit {_fmt(fail, 'dB')})"
    fix = (f"Speaker sound reaches the mic at {_fmt(v, 'dB')}: use the headset instead of the "
           "laptop speakers, seat the earpiece properly, and lower the speaker volume; the "
           "customer will hear an echo")
    if v >= fail:
        return Item("echo", Verdict.FAIL, v, "dB", fail, msg, fix, extra)
    if v >= c.leak_warn_db:
        return Item("echo", Verdict.WARN, v, "dB", c.leak_warn_db, msg, fix, extra)
    return Item("echo", Verdict.PASS, v, "dB", c.leak_warn_db, msg, None, extra)


LATENCY_SLACK_MS = 1.0
"""How far the playback and capture timestamps may disagree (sub-millisecond on a healthy
sound server): a delay this little below zero is zero, anything earlier is impossible."""


def judge_latency(delay_ms: float | None, path: str, c: CheckSettings) -> Item:
    """A delay below zero (sound captured before the speaker played it) is a timing error,
    not a fast headset: not measured, never a pass."""
    if delay_ms is None:
        return Item("latency", Verdict.SKIP, None, "ms", c.latency_warn_ms,
                    "Latency not measured (the test signal was not captured)")
    if delay_ms < -LATENCY_SLACK_MS:
        return _impossible_latency(delay_ms, path, c)
    delay_ms = max(delay_ms, 0.0)
    msg = f"Speaker-to-{path} delay {delay_ms:.0f} ms (limit {c.latency_warn_ms:.0f} ms)"
    extra = {"path": path}
    if delay_ms > c.latency_warn_ms:
        return Item("latency", Verdict.WARN, delay_ms, "ms", c.latency_warn_ms, msg,
                    "Audio is delayed in the devices: prefer a wired/USB headset over Bluetooth, "
                    "and check for audio effects or loopback modules in the sound server", extra)
    return Item("latency", Verdict.PASS, delay_ms, "ms", c.latency_warn_ms, msg, None, extra)


def _impossible_latency(delay_ms: float, path: str, c: CheckSettings) -> Item:
    """The skip for a capture that heard the burst before the speaker played it. Usually a
    sink monitor: the sound server feeds it when it mixes the sink's buffer, ahead of the
    DAC time the playback is timed by, or reports the sink's or the capture's latency
    wrongly."""
    return Item("latency", Verdict.SKIP, None, "ms", c.latency_warn_ms,
                f"Latency not measured: the {path} heard the test signal {-delay_ms:.0f} ms "
                "before the speaker played it, which cannot be; the sound server's timing "
                "is off (typically a sink monitor, fed before the sound reaches the DAC, or a "
                "misreported device latency)",
                "Run callwatch check again; if it persists, measure the delay on the acoustic "
                "path (the headset on a test head, so the speaker reaches the mic) or update "
                "PipeWire/PulseAudio", {"path": path})


PLAYBACK_UNDERFLOW_LIMIT = 5
"""A test burst that played with more underflows than this was mostly not played: what the
captures heard of it says nothing of the route (a machine too busy to feed the output)."""


def judge_far_end_route(cp: Coupling | None, c: CheckSettings, speaker: str,
                        far_end: str, underflows: int = 0) -> Item:
    """Whether the far-end capture hears what the speaker plays. A burst the output could not
    play whole is no evidence either way (WARN, run again); a capture that already is the
    speaker's monitor and heard nothing is not fixed by choosing it again."""
    thr = c.far_end_min_correlation
    if cp is None:
        return Item("far_end_route", Verdict.SKIP, None, None, thr,
                    "Far-end route not checked (no far-end capture or no playback)")
    msg = (f"The far-end capture ({far_end}) "
           + ("carries" if cp.correlation >= thr else "does not carry")
           + f" what the speaker ({speaker}) plays: correlation {cp.correlation:.2f}")
    if cp.correlation >= thr:
        return Item("far_end_route", Verdict.PASS, cp.correlation, None, thr, msg)
    if underflows > PLAYBACK_UNDERFLOW_LIMIT:
        return Item("far_end_route", Verdict.WARN, cp.correlation, None, thr,
                    msg + f", but the test burst played with {underflows} underflows, so "
                    "this says nothing of the route",
                    "Run callwatch check again when the machine is less busy (the output "
                    "could not be fed in time)")
    if far_end.removeprefix("pulse:") == speaker.removeprefix("pulse:") + ".monitor":
        return Item("far_end_route", Verdict.FAIL, cp.correlation, None, thr, msg,
                    "The far-end capture already is this output's monitor and heard none of "
                    "the test: check that the monitor is not muted or suspended (pavucontrol, "
                    "Recording tab) and that no other program holds the output exclusively")
    return Item("far_end_route", Verdict.FAIL, cp.correlation, None, thr, msg,
                "The daemon would not hear the customer: set [capture] far_end_device to the "
                "monitor of the headset's output (callwatch devices lists them, e.g. "
                "\"pulse:<sink>.monitor\"), or play calls through that output")


def overall(items: list[Item]) -> Verdict:
    """The worst verdict over the measured items (SKIP counts as PASS)."""
    return max((i.verdict for i in items if i.verdict is not Verdict.SKIP),
               default=Verdict.PASS)
