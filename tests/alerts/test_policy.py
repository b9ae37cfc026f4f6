"""The alert policy on scripted event timelines (events built directly, time passed in)."""

from __future__ import annotations

import dataclasses

import pytest

from alerts.policy import (
    TALK_OVER_BY_AGENT,
    TALK_OVER_BY_CUSTOMER,
    Alert,
    AlertPolicy,
    AlertSettings,
)
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream


def ev(kind: Kind, phase: Phase, stream: Stream | None, t0: float, t1: float, **data) -> Event:
    return Event(kind, phase, stream, int(t0 * ANALYSIS_RATE), int(t1 * ANALYSIS_RATE), data)


def talk_over(phase: Phase, t0: float, t1: float, initiator: str = "agent") -> Event:
    return ev(Kind.TALK_OVER, phase, None, t0, t1, initiator=initiator)


def noise(phase: Phase, t0: float, t1: float, floor: float = -38.2) -> Event:
    return ev(Kind.NOISE, phase, Stream.AGENT, t0, t1, noise_floor_dbfs=floor,
              threshold_dbfs=-45.0, min_snr_db=15.0, snr_db=9.123)


def states(alerts: list[Alert]) -> list[tuple[str, str]]:
    return [(a.id, a.state) for a in alerts]


def test_talk_over_fires_on_begin_and_resolves_resolve_s_after_end():
    p = AlertPolicy(AlertSettings())
    [a] = p.update([talk_over(Phase.BEGIN, 10.0, 10.8)], now=100.0)
    assert (a.id, a.kind, a.stream, a.state, a.severity) == (
        "talk_over-1", Kind.TALK_OVER, None, "firing", "warning")
    assert a.message == TALK_OVER_BY_AGENT
    assert a.values == {"initiator": "agent"} and a.thresholds == {}
    assert a.started_at == pytest.approx(99.2) and a.at == 100.0
    assert p.active == [a]
    assert p.update([talk_over(Phase.END, 10.0, 12.0)], now=101.2) == []
    assert p.tick(104.1) == []                       # 2.9 s after END: still firing
    [r] = p.tick(104.2)                              # resolve_s = 3 s after END
    assert (r.id, r.state, r.at) == ("talk_over-1", "resolved", 104.2)
    assert r.message == a.message and r.started_at == a.started_at
    assert p.active == []
    assert p.counts["fired"] == 1 and p.counts["resolved"] == 1


def test_an_end_known_late_resolves_resolve_s_after_the_real_end():
    """A talk-over's END comes some time after the overlap ended (the episode is closed only
    once no later overlap can join it): with the position ``now`` stands for, the nudge goes
    ``resolve_s`` after the real end, not after the END arrived."""
    p = AlertPolicy(AlertSettings(resolve_s=3.0))
    p.update([talk_over(Phase.BEGIN, 10.0, 10.8)], now=100.8, position=int(10.8 * ANALYSIS_RATE))
    # The overlap ended at 12.0 s of audio; its END arrives with the audio at 13.2 s.
    assert p.update([talk_over(Phase.END, 10.0, 12.0)], now=103.2,
                    position=int(13.2 * ANALYSIS_RATE)) == []
    assert p.tick(104.9) == []
    [r] = p.tick(105.0)                              # 12.0 s of audio is 102.0: + 3 s
    assert r.state == "resolved"
    late = AlertPolicy(AlertSettings(resolve_s=1.0))   # already past: resolved at once
    late.update([talk_over(Phase.BEGIN, 10.0, 10.8)], now=100.8)
    [r] = late.update([talk_over(Phase.END, 10.0, 12.0)], now=103.2,
                      position=int(13.2 * ANALYSIS_RATE))
    assert (r.state, r.at) == ("resolved", 103.2)


def test_customer_initiated_talk_over_is_informational():
    p = AlertPolicy()
    [a] = p.update([talk_over(Phase.BEGIN, 1.0, 1.8, initiator="customer")], now=5.0)
    assert a.severity == "info" and a.message == TALK_OVER_BY_CUSTOMER
    off = AlertPolicy(AlertSettings(talk_over_by_customer_enabled=False))
    assert off.update([talk_over(Phase.BEGIN, 1.0, 1.8, initiator="customer")], now=5.0) == []
    assert off.counts["suppressed_disabled"] == 1
    assert len(off.update([talk_over(Phase.BEGIN, 9.0, 9.8)], now=13.0)) == 1


def test_cooldown_suppresses_a_second_nudge_of_the_same_kind_within_60_s():
    p = AlertPolicy(AlertSettings())
    fired = p.update([talk_over(Phase.BEGIN, 0, 0.8)], now=0.0)
    fired += p.update([talk_over(Phase.END, 0, 2.0)], now=1.2)
    fired += p.tick(5.0)
    assert states(fired) == [("talk_over-1", "firing"), ("talk_over-1", "resolved")]
    # Same kind again 30 s after the first firing: suppressed and counted, nothing to resolve.
    assert p.update([talk_over(Phase.BEGIN, 30, 30.8)], now=30.0) == []
    assert p.update([talk_over(Phase.END, 30, 31)], now=31.0) + p.tick(40.0) == []
    assert p.counts["suppressed_cooldown"] == 1
    # Another kind is not affected by the talk-over cooldown.
    assert states(p.update([noise(Phase.BEGIN, 40, 45)], now=45.0)) == [("noise-1", "firing")]
    # 60 s after the first firing the next talk-over nudges again.
    assert states(p.update([talk_over(Phase.BEGIN, 60, 60.8)], now=60.0)) == [
        ("talk_over-2", "firing")]


def test_cooldown_length_is_a_setting():
    p = AlertPolicy(AlertSettings(cooldown_s=10.0, resolve_s=0.0))
    out = p.update([talk_over(Phase.BEGIN, 0, 1), talk_over(Phase.END, 0, 2)], now=0.0)
    out += p.update([talk_over(Phase.BEGIN, 9, 9.9)], now=9.9)    # held until 10.0
    out += p.update([talk_over(Phase.END, 9, 9.95)], now=9.95)    # over before that
    out += p.update([talk_over(Phase.BEGIN, 11, 12)], now=11.0)
    assert states(out) == [("talk_over-1", "firing"), ("talk_over-1", "resolved"),
                           ("talk_over-2", "firing")]
    assert p.counts["suppressed_cooldown"] == 1


def test_second_begin_while_firing_is_deduplicated():
    p = AlertPolicy()
    out = p.update([noise(Phase.BEGIN, 0, 5)], now=5.0)
    out += p.update([noise(Phase.BEGIN, 0, 6)], now=6.0)
    assert states(out) == [("noise-1", "firing")]
    assert p.counts["deduplicated"] == 1
    # The same kind on the other stream is another party: its own nudge and allowance.
    assert states(p.update([ev(Kind.NOISE, Phase.BEGIN, Stream.CUSTOMER, 0, 6)], now=7.0)) == [
        ("noise-2", "firing")]
    assert p.counts["suppressed_cooldown"] == 0


def test_condition_back_inside_resolve_window_keeps_the_same_alert():
    p = AlertPolicy(AlertSettings(resolve_s=3.0))
    out = p.update([noise(Phase.BEGIN, 0, 5)], now=5.0)
    out += p.update([noise(Phase.END, 0, 8)], now=8.0)
    out += p.update([noise(Phase.BEGIN, 9, 10)], now=10.0)     # back after 2 s: same alert
    out += p.tick(20.0)
    assert states(out) == [("noise-1", "firing")]
    assert p.counts["continued"] == 1
    out += p.update([noise(Phase.END, 9, 21, floor=-50.0)], now=21.0) + p.tick(24.0)
    assert states(out) == [("noise-1", "firing"), ("noise-1", "resolved")]
    assert out[-1].values["noise_floor_dbfs"] == -50.0           # END measurements carried


def test_resolve_s_zero_resolves_at_end():
    p = AlertPolicy(AlertSettings(resolve_s=0.0))
    out = p.update([noise(Phase.BEGIN, 0, 5)], now=5.0)
    out += p.update([noise(Phase.END, 0, 7)], now=7.0)
    assert states(out) == [("noise-1", "firing"), ("noise-1", "resolved")]
    assert out[1].at == 7.0


def test_snooze_resolves_the_firing_alert_and_silences_the_kind_until_then():
    p = AlertPolicy()
    [a] = p.update([noise(Phase.BEGIN, 0, 5)], now=5.0)
    p.snooze("noise", until=5.0 + 600)
    [r] = p.tick(6.0)
    assert (r.id, r.state) == (a.id, "resolved")
    assert p.snoozed_until(Kind.NOISE) == 605.0
    assert p.update([noise(Phase.BEGIN, 100, 105)], now=105.0) == []
    assert p.counts["suppressed_snooze"] == 1
    assert len(p.update([talk_over(Phase.BEGIN, 106, 107)], now=107.0)) == 1  # other kinds
    assert p.update([noise(Phase.END, 100, 110)], now=110.0) == []
    assert states(p.update([noise(Phase.BEGIN, 606, 611)], now=611.0)) == [("noise-2", "firing")]
    assert p.snoozed_until(Kind.NOISE) is None
    with pytest.raises(ValueError):
        p.snooze("typo", until=1.0)


def test_severity_values_thresholds_and_messages():
    p = AlertPolicy(AlertSettings(cooldown_s=0.0))
    out = p.update([
        ev(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, 0, 10, level_dbfs=-91.5,
           threshold_dbfs=-70.0),
        noise(Phase.BEGIN, 0, 5),
        ev(Kind.TOO_QUIET, Phase.BEGIN, Stream.CUSTOMER, 0, 5, level_dbfs=-44.0,
           threshold_dbfs=-38.0),
        ev(Kind.SILENCE, Phase.BEGIN, None, 20, 25, threshold_s=5.0),
    ], now=30.0)
    by_kind = {a.kind: a for a in out}
    mic = by_kind[Kind.MIC_DEAD]
    assert (mic.severity, mic.message) == ("critical", "Your mic may be dead or muted")
    assert mic.values == {"level_dbfs": -91.5} and mic.thresholds == {"threshold_dbfs": -70.0}
    nz = by_kind[Kind.NOISE]
    assert nz.severity == "warning" and "mute" in nz.message
    assert nz.values == {"noise_floor_dbfs": -38.2, "snr_db": 9.12}
    assert nz.thresholds == {"threshold_dbfs": -45.0, "min_snr_db": 15.0}
    quiet = by_kind[Kind.TOO_QUIET]
    assert quiet.stream is Stream.CUSTOMER and quiet.severity == "info"
    assert quiet.message.startswith("The customer")
    dead_air = by_kind[Kind.SILENCE]
    assert dead_air.message == "Dead air: check in with the customer"
    assert dead_air.started_at == pytest.approx(25.0)
    custom = AlertPolicy(AlertSettings(mic_dead_severity="warning"))
    [m] = custom.update([ev(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, 0, 10)], now=1.0)
    assert m.severity == "warning"
    with pytest.raises(ValueError, match="noise_severity"):
        AlertSettings(noise_severity="loud")


def test_delay_drops_short_conditions_and_fires_lasting_ones():
    p = AlertPolicy(AlertSettings(clipping_delay_s=2.0))
    clip = Kind.CLIPPING
    assert p.update([ev(clip, Phase.BEGIN, Stream.AGENT, 0, 1, clipped_ratio=0.01)], now=1.0) == []
    assert p.update([ev(clip, Phase.END, Stream.AGENT, 0, 1.5)], now=1.5) + p.tick(9.0) == []
    assert p.counts["too_short"] == 1
    assert p.update([ev(clip, Phase.BEGIN, Stream.AGENT, 20, 21)], now=21.0) == []
    assert p.tick(22.9) == []
    [a] = p.tick(23.0)
    assert (a.id, a.state, a.at) == ("clipping-1", "firing", 23.0)


def test_disabled_kind_never_fires():
    p = AlertPolicy(AlertSettings(silence_enabled=False))
    assert p.update([ev(Kind.SILENCE, Phase.BEGIN, None, 0, 5)], now=5.0) == []
    assert p.counts["suppressed_disabled"] == 1


def test_settings_are_declared_for_the_config_loader():
    for f in dataclasses.fields(AlertSettings):
        assert f.metadata.get("help"), f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        AlertSettings().cooldown_s = 1.0  # type: ignore[misc]


def test_update_settings_keeps_firing_alerts():
    p = AlertPolicy()
    p.update([noise(Phase.BEGIN, 0, 5)], now=5.0)
    p.update_settings(AlertSettings(resolve_s=0.5))
    p.update([noise(Phase.END, 0, 6)], now=6.0)
    assert states(p.tick(6.5)) == [("noise-1", "resolved")]


# -- allowances per kind and party -------------------------------------------------------


def test_customer_talk_over_never_holds_back_the_agents():
    """The sample call: the customer cuts in at 9.6 s, the agent at 16.1 s; both are nudged."""
    p = AlertPolicy()
    out = p.update([talk_over(Phase.BEGIN, 9.57, 10.37, initiator="customer")], now=10.37)
    out += p.update([talk_over(Phase.END, 9.57, 11.08, initiator="customer")], now=11.1)
    out += p.tick(14.1)
    out += p.update([talk_over(Phase.BEGIN, 16.06, 16.86)], now=16.86)
    assert [(a.id, a.state, a.message, a.severity) for a in out] == [
        ("talk_over-1", "firing", TALK_OVER_BY_CUSTOMER, "info"),
        ("talk_over-1", "resolved", TALK_OVER_BY_CUSTOMER, "info"),
        ("talk_over-2", "firing", TALK_OVER_BY_AGENT, "warning"),
    ]
    assert out[1].at == pytest.approx(14.1) and out[2].at == 16.86
    assert p.counts["suppressed_cooldown"] == 0


def test_talk_overs_of_both_parties_are_two_nudges_with_their_own_ends():
    p = AlertPolicy()
    out = p.update([talk_over(Phase.BEGIN, 1.0, 1.8, initiator="customer")], now=1.8)
    out += p.update([talk_over(Phase.END, 1.0, 2.5, initiator="customer")], now=2.5)
    # Inside the customer's resolve window the agent cuts in: not a continuation of hers.
    out += p.update([talk_over(Phase.BEGIN, 4.0, 4.8)], now=4.8)
    assert [a.message for a in p.active] == [TALK_OVER_BY_AGENT, TALK_OVER_BY_CUSTOMER]
    out += p.tick(5.5)                                    # hers: 3 s after her END
    out += p.update([talk_over(Phase.END, 4.0, 6.0)], now=6.0)
    out += p.tick(9.0)
    assert states(out) == [("talk_over-1", "firing"), ("talk_over-2", "firing"),
                           ("talk_over-1", "resolved"), ("talk_over-2", "resolved")]
    assert out[2].at == 5.5 and out[3].at == 9.0
    assert p.counts["continued"] == 0


def test_every_kind_keeps_one_allowance_per_party():
    p = AlertPolicy()
    out = []
    for kind in (Kind.NOISE, Kind.TOO_LOUD, Kind.CLIPPING, Kind.ECHO):
        for stream in (Stream.AGENT, Stream.CUSTOMER):
            out += p.update([ev(kind, Phase.BEGIN, stream, 0, 5)], now=5.0)
            out += p.update([ev(kind, Phase.END, stream, 0, 6)], now=6.0)
    out += p.tick(100.0)
    fired = [(a.kind, a.stream) for a in out if a.state == "firing"]
    assert len(fired) == len(set(fired)) == 6           # clipping waits its 2 s delay...
    assert p.counts["too_short"] == 2                   # ...and both ended within it
    # The same party again within the minute is held back.
    p.update([ev(Kind.NOISE, Phase.BEGIN, Stream.CUSTOMER, 100, 105)], now=105.0)
    assert p.update([ev(Kind.NOISE, Phase.END, Stream.CUSTOMER, 100, 106)], now=106.0) == []
    p2 = AlertPolicy()
    p2.update([noise(Phase.BEGIN, 0, 5), noise(Phase.END, 0, 6)], now=6.0)
    assert states(p2.tick(9.0)) == [("noise-1", "resolved")]
    assert p2.update([noise(Phase.BEGIN, 20, 25), noise(Phase.END, 20, 26)], now=26.0) == []
    assert p2.counts["suppressed_cooldown"] == 1


def test_a_condition_outlasting_the_cooldown_fires_when_the_allowance_returns():
    p = AlertPolicy(AlertSettings(resolve_s=0.0))
    p.update([talk_over(Phase.BEGIN, 0, 0.8), talk_over(Phase.END, 0, 2)], now=0.8)
    assert p.update([talk_over(Phase.BEGIN, 50, 50.8)], now=50.8) == []
    assert p.counts["held"] == 1
    assert p.tick(60.7) == []
    [a] = p.tick(60.8)                                  # 60 s after the first firing
    assert (a.id, a.state, a.message) == ("talk_over-2", "firing", TALK_OVER_BY_AGENT)
    assert a.started_at == pytest.approx(50.0)           # when the condition began
    [r] = p.update([talk_over(Phase.END, 50, 61)], now=61.0)
    assert (r.id, r.state) == ("talk_over-2", "resolved")
    assert p.counts["suppressed_cooldown"] == 0


# -- firing, ranking and resolving --------------------------------------------------------


def test_nudge_fires_in_the_update_that_confirms_it():
    p = AlertPolicy()
    # A clipping waiting for its delay does not hold back another kind confirmed meanwhile.
    assert p.update([ev(Kind.CLIPPING, Phase.BEGIN, Stream.AGENT, 0, 1)], now=1.0) == []
    [a] = p.update([talk_over(Phase.BEGIN, 1.2, 2.0)], now=2.0)
    assert (a.state, a.at, a.started_at) == ("firing", 2.0, pytest.approx(1.2))
    [c] = p.tick(3.0)
    assert (c.kind, c.at) == (Kind.CLIPPING, 3.0)


def test_warnings_outrank_info():
    p = AlertPolicy()
    out = p.update([
        ev(Kind.TOO_QUIET, Phase.BEGIN, Stream.CUSTOMER, 0, 5),          # info
        ev(Kind.SILENCE, Phase.BEGIN, None, 0, 5),                       # info
        noise(Phase.BEGIN, 0, 5),                                        # warning
        ev(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, 0, 5),              # critical
    ], now=5.0)
    assert [a.severity for a in out] == ["critical", "warning", "info", "info"]
    assert [a.kind for a in out[2:]] == [Kind.TOO_QUIET, Kind.SILENCE]   # stable
    assert [a.kind for a in p.active] == [a.kind for a in out]


def test_snoozing_the_customers_talk_over_keeps_the_agents():
    p = AlertPolicy()
    p.update([talk_over(Phase.BEGIN, 1.0, 1.8, initiator="customer")], now=1.8)
    p.snooze("talk_over", until=600.0)                   # the button on the showing nudge
    [r] = p.tick(2.0)
    assert (r.message, r.state) == (TALK_OVER_BY_CUSTOMER, "resolved")
    assert p.snoozed_until(Kind.TALK_OVER, Stream.CUSTOMER) == 600.0
    assert p.snoozed_until(Kind.TALK_OVER, Stream.AGENT) is None
    [a] = p.update([talk_over(Phase.BEGIN, 8.0, 8.8)], now=8.8)
    assert (a.message, a.severity) == (TALK_OVER_BY_AGENT, "warning")
    assert p.update([talk_over(Phase.BEGIN, 70, 70.8, initiator="customer")], now=70.8) == []
    # Nothing showing: a snooze silences the kind for every party.
    q = AlertPolicy()
    q.snooze(Kind.TALK_OVER, until=100.0)
    assert q.update([talk_over(Phase.BEGIN, 1, 1.8)], now=1.8) == []
    assert q.update([talk_over(Phase.BEGIN, 5, 5.8, initiator="customer")], now=5.8) == []


def test_dead_air_fires_at_the_threshold_and_resolves_at_the_first_speech():
    p = AlertPolicy(AlertSettings(resolve_s=3.0))
    [a] = p.update([ev(Kind.SILENCE, Phase.BEGIN, None, 18.56, 23.56, threshold_s=5.0)],
                   now=23.56)
    assert (a.kind, a.state, a.at, a.severity) == (Kind.SILENCE, "firing", 23.56, "info")
    assert a.started_at == pytest.approx(18.56) and a.thresholds == {"threshold_s": 5.0}
    assert p.awaiting_end  # a caller that holds audio back passes the first word promptly
    [r] = p.update([ev(Kind.SILENCE, Phase.END, None, 18.56, 24.75, duration_s=6.19,
                       threshold_s=5.0)], now=24.8)
    assert (r.id, r.state, r.at) == (a.id, "resolved", 24.8)   # no resolve_s wait
    assert r.values["duration_s"] == 6.19
    assert p.active == [] and not p.awaiting_end
    # Another stretch of dead air within the minute waits for the allowance.
    assert p.update([ev(Kind.SILENCE, Phase.BEGIN, None, 40, 45)], now=45.0) == []
    assert p.update([ev(Kind.SILENCE, Phase.END, None, 40, 46)], now=46.0) == []
    assert p.counts["suppressed_cooldown"] == 1


def test_next_due_names_the_earliest_timer():
    """A caller that updates only now and then (the daemon while it holds audio back) must
    update by the next timer: a delayed nudge, one waiting out resolve_s, a snooze."""
    p = AlertPolicy(AlertSettings(talk_over_delay_s=1.5, resolve_s=3.0))
    assert p.next_due() is None
    p.update([talk_over(Phase.BEGIN, 10.0, 10.8)], now=100.0)
    assert p.next_due() == pytest.approx(101.5)          # the delayed nudge
    [a] = p.tick(101.5)
    assert a.state == "firing" and p.next_due() is None  # firing, nothing pending
    assert not p.awaiting_end                            # it waits out resolve_s anyway
    p.update([talk_over(Phase.END, 10.0, 12.0)], now=102.0)
    assert p.next_due() == pytest.approx(105.0)          # resolve_s after the END
    p.snooze(Kind.NOISE, until=104.0)
    assert p.next_due() == pytest.approx(104.0)          # the snooze ends first
    p.tick(104.0)
    assert p.next_due() == pytest.approx(105.0)
    [r] = p.tick(105.0)
    assert r.state == "resolved" and p.next_due() is None
