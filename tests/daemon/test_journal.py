"""The crash journal (daemon.journal) on real files: a call that never ended is recovered once
by the next start, a call that ended leaves nothing to recover."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from daemon.calls import CallTracker
from daemon.config import CaptureSettings
from daemon.journal import CallJournal, journal_path


def test_journal_path_is_per_control_socket_under_the_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    a, b = journal_path(Path("/run/a.sock")), journal_path(Path("/run/b.sock"))
    assert a.parent == b.parent == tmp_path / "state" / "callwatch"
    assert a != b and a == journal_path(Path("/run/a.sock"))
    assert re.fullmatch(r"calls-[0-9a-f]{12}\.jsonl", a.name)


def test_a_call_that_never_ended_is_recovered_once_by_the_next_start(tmp_path):
    path = tmp_path / "state" / "calls.jsonl"
    tracker = CallTracker(CaptureSettings())
    call = tracker.start(0.0, 0, 1_700_000_000.0, auto=True, call_id="c7")
    journal = CallJournal(path)
    journal.checkpoint(call, {"duration_s": 2.0}, 2.0)
    journal.checkpoint(call, {"duration_s": 4.0}, 4.0)
    assert journal.last_s == 4.0
    # the process dies here: no clear(); a torn half line is all the last write left
    with open(path, "ab") as f:
        f.write(b'{"call_id":"c7","auto":true,"wall_st')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    after = CallJournal(path)
    last = after.recover()
    assert last is not None
    assert (last["call_id"], last["auto"], last["summary"]) == ("c7", True, {"duration_s": 4.0})
    assert path.stat().st_size == 0 and after.recover() is None


def test_a_journal_cleared_at_the_calls_end_recovers_nothing(tmp_path):
    journal = CallJournal(tmp_path / "calls.jsonl")
    call = CallTracker(CaptureSettings()).start(0.0, 0, 0.0, auto=False)
    journal.checkpoint(call, {}, 2.0)
    journal.clear()
    journal.close()
    assert CallJournal(tmp_path / "calls.jsonl").recover() is None


def test_closing_removes_an_empty_journal_and_keeps_an_open_call(tmp_path):
    """Daemons on passing control sockets (replays, tests) leave no empty journal behind; a
    journal that still holds a call (the daemon is going down mid-call) stays for recovery."""
    tracker = CallTracker(CaptureSettings())
    empty = CallJournal(tmp_path / "a.jsonl")
    empty.checkpoint(tracker.start(0.0, 0, 1_700_000_000.0, auto=True, call_id="a"),
                     {"duration_s": 1.0}, 1.0)
    empty.clear()  # the call ended
    empty.close()
    assert not (tmp_path / "a.jsonl").exists()
    kept = CallJournal(tmp_path / "b.jsonl")
    kept.checkpoint(tracker.start(0.0, 0, 1_700_000_000.0, auto=True, call_id="b"),
                    {"duration_s": 1.0}, 1.0)
    kept.close()
    assert CallJournal(tmp_path / "b.jsonl").recover()["call_id"] == "b"
