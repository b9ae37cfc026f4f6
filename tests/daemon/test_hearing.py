"""The daemon's exposure: it survives a restart within the same day (the state file under
$XDG_STATE_HOME), starts at zero on a new day, keeps a broken file aside, and warns once per
action value; sensitivities recorded per headset model."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pytest

from daemon.config import ConfigError, load_config
from daemon.hearing import (
    HearingTracker,
    effective_sensitivity,
    load_sensitivities,
    record_sensitivity,
)
from daemon.state import state_dir
from dsp.events import Kind, Phase
from dsp.hearing import HearingSettings

S = HearingSettings()
DAY = dt.date(2026, 3, 2)
MS_90_DBA = 10 ** (-10 / 10)  # -10 dBFS(A) at 100 dB SPL for 0 dBFS: 90 dB(A)


@pytest.fixture(autouse=True)
def _state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def listen(tracker: HearingTracker, seconds: int, start_s: float = 0.0, day: dt.date = DAY,
           ms: float = MS_90_DBA) -> list:
    """Feed running totals second by second, as the processing loop reads them."""
    events = []
    for k in range(seconds + 1):
        t = start_s + k
        events += tracker.feed(ms * t, t, day, int(t * 16000), now=t)
    return events


def test_the_exposure_survives_a_restart_within_the_same_day():
    first = HearingTracker(S, DAY, sensitivity=100.0, source="config")
    listen(first, 1800)
    first.save()
    lex = first.exposure.lex_8h_db
    assert (state_dir() / "exposure.json").exists()
    # A new daemon the same day: its pipeline totals start again at zero.
    second = HearingTracker(S, DAY, sensitivity=100.0, source="config")
    assert second.exposure.lex_8h_db == pytest.approx(lex)
    listen(second, 1800)
    hand = 90 + 10 * math.log10(1 / 8)  # one hour at 90 dB(A)
    assert second.exposure.lex_8h_db == pytest.approx(hand, abs=0.01)


def test_a_new_day_starts_at_zero_and_the_old_file_is_not_used():
    t = HearingTracker(S, DAY, sensitivity=100.0)
    listen(t, 600)
    t.save()
    assert HearingTracker(S, DAY + dt.timedelta(days=1), sensitivity=100.0
                          ).exposure.lex_8h_db is None
    # crossing midnight while running: the day resets in place
    events = t.feed(MS_90_DBA * 700, 700, DAY + dt.timedelta(days=1), 0, now=700)
    assert t.day == (DAY + dt.timedelta(days=1)).isoformat()
    # only the 100 s fed after midnight count: 90 dB(A) for 100 s
    assert t.exposure.lex_8h_db == pytest.approx(90 + 10 * math.log10(100 / 28800))
    assert events == []


def test_a_broken_state_file_is_kept_aside(caplog):
    path = state_dir() / "exposure.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema": "callwatch.exposure/1", "day": "2026-03-02", "dose_s": -5}')
    t = HearingTracker(S, DAY, sensitivity=100.0)
    assert t.exposure.lex_8h_db is None
    assert (path.parent / "exposure.json.bad").read_text().startswith("{")
    assert "dose_s" in caplog.text


def test_each_action_value_warns_once_with_its_severity_marker():
    t = HearingTracker(S, DAY, sensitivity=100.0)
    # 95 dB(A): 80 reached at 8 h * 10^-1.5 = 910.7 s, 85 at 2880 s.
    events = listen(t, 3000, ms=10 ** (-5 / 10))
    begins = [e for e in events if e.phase is Phase.BEGIN]
    assert [(e.kind, e.data["action"], e.data["threshold_dba"]) for e in begins] == [
        (Kind.EXPOSURE, "lower", 80.0), (Kind.EXPOSURE, "upper", 85.0)]
    assert begins[0].start == 911 * 16000
    ends = [e for e in events if e.phase is Phase.END]
    assert len(ends) == 2  # each notice resolves after its minute
    # a restart the same day does not warn again
    t.save()
    again = HearingTracker(S, DAY, sensitivity=100.0)
    assert [e for e in listen(again, 100, ms=10 ** (-5 / 10)) if e.phase is Phase.BEGIN] == []


def test_uncalibrated_never_warns_and_reports_no_db_spl():
    t = HearingTracker(S, DAY)
    assert listen(t, 3600, ms=1.0) == []
    snap = t.snapshot
    assert snap.lex_8h_db is None and snap.laeq_db is None
    assert snap.uncalibrated_s == 3600 and snap.uncalibrated_laeq_dbfs == pytest.approx(0.0)


def test_sensitivity_per_headset_model(tmp_path):
    record_sensitivity("Jabra Evolve2 40", 104.5)
    record_sensitivity("Poly Blackwire 3320", 99.0)
    rec = load_sensitivities()
    assert rec == {"Jabra Evolve2 40": 104.5, "Poly Blackwire 3320": 99.0}
    assert effective_sensitivity(S, "Jabra Evolve2 40", rec) == (104.5, "check")
    assert effective_sensitivity(S, "Unknown", rec) == (None, "none")
    cfg = dataclasses.replace(S, dbspl_at_0dbfs=110.0)
    assert effective_sensitivity(cfg, "Jabra Evolve2 40", rec) == (110.0, "config")
    with pytest.raises(ValueError, match="between 60 and 140"):
        record_sensitivity("x", 10.0)
    (state_dir() / "sensitivity.json").write_text("not json")
    assert load_sensitivities() == {}


def test_hearing_table_in_the_config(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[hearing]\ndbspl_at_0dbfs = 104\n")
    assert load_config(p).hearing.sensitivity == 104.0
    p.write_text("[hearing]\ndbspl_at_0dbfs = -20\n")
    with pytest.raises(ConfigError, match=r"\[hearing\] dbspl_at_0dbfs = -20"):
        load_config(p)
    p.write_text("[hearing]\ndbspl_at_0dbfs = 20\n")
    with pytest.raises(ConfigError, match="0 for uncalibrated"):
        load_config(p)
    p.write_text("[hearing]\nexposure_lower_dba = 90\n")
    with pytest.raises(ConfigError, match="upper action value"):
        load_config(p)
    assert json.loads(json.dumps(dataclasses.asdict(S)))  # plain values only


def test_a_replay_neither_reads_nor_adds_to_the_agents_exposure():
    """Replayed audio never reached the agent's ears: the tracker of a replay starts at zero
    and leaves the day's state as it was."""
    first = HearingTracker(S, DAY, sensitivity=100.0, source="config")
    listen(first, 600)
    first.save()
    path = state_dir() / "exposure.json"
    before = path.read_bytes()
    replay = HearingTracker(S, DAY, sensitivity=100.0, source="config", keep=False)
    assert replay.exposure.state().dose_s == 0.0 and replay.exposure.lex_8h_db is None
    listen(replay, 1800)
    replay.save()
    assert path.read_bytes() == before
    again = HearingTracker(S, DAY, sensitivity=100.0, source="config")
    assert again.exposure.lex_8h_db == pytest.approx(first.exposure.lex_8h_db)
