"""Hearing-safety nudges: their own severity and words although the far end carried the sound,
exposure escalating from the lower to the upper action value."""

from __future__ import annotations

import dataclasses

from alerts.policy import AlertPolicy, AlertSettings
from alerts.protocol import alert_message
from dsp.events import Event, Kind, Phase, Stream


def ev(kind: Kind, phase: Phase = Phase.BEGIN, **data) -> Event:
    return Event(kind, phase, Stream.CUSTOMER, 0, 160, data)


def test_acoustic_shock_is_critical_and_tells_the_agent_what_to_do():
    (a,) = AlertPolicy().update([ev(Kind.ACOUSTIC_SHOCK, trigger="tone", level_dbfs=-6.0,
                                    threshold_dbfs=-9.0)], now=10.0)
    assert a.severity == "critical" and a.stream is Stream.CUSTOMER
    assert "loud sound" in a.message and a.thresholds == {"threshold_dbfs": -9.0}
    assert alert_message(a)["alert"]["kind"] == "acoustic_shock"


def test_loud_far_end_is_a_warning_unlike_the_customers_own_level():
    policy = AlertPolicy()
    (loud,) = policy.update([ev(Kind.LOUD_FAR_END, level_dba=91.0, threshold_dba=85.0)], 1.0)
    (hot_line,) = policy.update([ev(Kind.TOO_LOUD, level_dbfs=-10.0)], 1.0)
    assert loud.severity == "warning" and "headset volume" in loud.message
    assert hot_line.severity == "info"


def test_exposure_lower_then_upper_action_value():
    policy = AlertPolicy()
    (low,) = policy.update([ev(Kind.EXPOSURE, action="lower", threshold_dba=80.0,
                               lex_8h_db=80.0)], 100.0)
    assert low.severity == "warning" and "80 dB(A)" in low.message
    policy.update([ev(Kind.EXPOSURE, Phase.END, action="lower", threshold_dba=80.0)], 160.0)
    policy.tick(200.0)
    (high,) = policy.update([ev(Kind.EXPOSURE, action="upper", threshold_dba=85.0,
                                lex_8h_db=85.0)], 5000.0)
    assert high.severity == "critical" and "85 dB(A)" in high.message
    assert "break" in high.message


def test_hearing_kinds_can_be_switched_off_and_reseverity():
    s = dataclasses.replace(AlertSettings(), acoustic_shock_enabled=False,
                            loud_far_end_severity="critical")
    policy = AlertPolicy(s)
    assert policy.update([ev(Kind.ACOUSTIC_SHOCK)], 1.0) == []
    (a,) = policy.update([ev(Kind.LOUD_FAR_END)], 1.0)
    assert a.severity == "critical"
