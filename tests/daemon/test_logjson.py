"""The daemon's event log on real files and real streams: one whole JSON object per line
for machines, one readable line for people, private files, and no sink that can stop it."""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.tail import format_message
from daemon.logjson import EventLog, human, open_private

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_record_is_one_json_line_with_a_utc_millisecond_stamp(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog([open_private(str(path))])
    returned = log.emit("alert", kind="noise", level_dbfs=-41.234, where=tmp_path)
    log.emit("stopped")
    log.close()
    first, second = records(path)
    assert first == {**returned, "where": str(tmp_path)}  # not JSON: written as its str()
    assert TS.match(first["ts"]) and list(first)[:2] == ["ts", "event"]
    assert first["event"] == "alert" and first["level_dbfs"] == -41.234
    assert second["event"] == "stopped" and second["ts"] >= first["ts"]


def test_the_log_file_is_created_private_and_appended_to(tmp_path):
    path = tmp_path / "events.jsonl"
    for run in ("first", "second"):
        log = EventLog([open_private(str(path))])
        log.emit("started", run=run)
        log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r["run"] for r in records(path)] == ["first", "second"]


def test_an_existing_readable_log_of_ours_is_narrowed(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event":"old"}\n')
    os.chmod(path, 0o644)
    with open_private(str(path)) as f:
        f.write('{"event":"new"}\n')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r["event"] for r in records(path)] == ["old", "new"]


def test_a_log_path_that_cannot_be_opened_raises_and_leaks_no_descriptor(tmp_path):
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(IsADirectoryError):
        open_private(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        open_private(str(tmp_path / "missing" / "events.jsonl"))
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_closed_sink_does_not_stop_the_others(tmp_path):
    gone = open_private(str(tmp_path / "gone.jsonl"))
    kept = tmp_path / "kept.jsonl"
    log = EventLog([gone, open_private(str(kept))])
    gone.close()                                   # writing to it raises ValueError
    log.emit("device_lost", stream="agent")
    log.emit("device_restored", stream="agent")
    log.close()
    assert [r["event"] for r in records(kept)] == ["device_lost", "device_restored"]


def test_records_from_many_threads_stay_whole_lines(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog([open_private(str(path))])
    threads, each = 8, 300
    payload = "x" * 2000                           # longer than one pipe/page write

    def writer(n: int) -> None:
        for i in range(each):
            log.emit("levels", thread=n, i=i, payload=payload)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    log.close()
    got = records(path)
    assert len(got) == threads * each
    for n in range(threads):
        assert [r["i"] for r in got if r["thread"] == n] == list(range(each))


@pytest.fixture
def zone(monkeypatch):
    """Set the local time zone (POSIX TZ, no tz database needed) for this test only."""

    def set_zone(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


def test_human_line_keeps_what_matters(zone):
    zone("UTC0")
    record = {"ts": "2026-03-01T09:15:02.123Z", "event": "noise", "kind": "noise",
              "stream": "agent", "level_dbfs": -41.2345, "device": None,
              "thresholds": {"floor_dbfs": -45}}
    line = human(record)
    assert line.startswith("09:15:02.123 noise            ")
    assert "kind=" not in line and "device" not in line       # same as the event; unknown
    assert "level_dbfs=-41.23" in line and 'thresholds={"floor_dbfs":-45}' in line


def test_human_line_shows_times_on_the_local_clock_not_as_unix_seconds(zone):
    """An alert's record (what `callwatch demo` prints on a terminal) carries Unix times: the
    line reads as the local HH:MM:SS and says how long the condition had held (a replay's
    alert clock runs at its pace: a time of day would not match the line's), and other
    records' times read on the local clock, the way `callwatch tail` prints them."""
    zone("IST-5:30")                                      # UTC+05:30
    at = datetime(2026, 3, 1, 9, 15, 2, 500000, tzinfo=UTC).timestamp()
    record = {"ts": "2026-03-01T09:15:02.623Z", "event": "alert", "id": "talk_over-1",
              "kind": "talk_over", "state": "firing", "severity": "info", "message": "m",
              "started_at": at - 0.8, "at": at}
    line = human(record)
    assert line == "14:45:02.623 nudge shown      info: m (after 0.8 s)"
    lost = human({"ts": "2026-03-01T09:15:02.623Z", "event": "call_lost", "saved_at": at})
    assert lost.endswith("saved_at=14:45:02")
    assert not re.search(r"\d{10}", line + lost), line
    assert format_message({"type": "alert", "alert": {
        "at": at, "state": "firing", "severity": "info", "kind": "talk_over",
        "message": "m"}}).startswith("14:45:02 ")                  # tail: the same clock


def test_human_lines_of_a_detection_and_its_nudge_say_what_each_is(zone):
    """`callwatch demo` on a terminal: a talk-over's detection (when in the stream, how long,
    who started it) and the nudge the agent saw (its severity and wording), not the same
    key=value fields twice."""
    zone("UTC0")
    base = {"event": "talk_over", "kind": "talk_over", "stream": None, "initiator": "agent",
            "call_id": "c1"}
    begin = human({"ts": "2026-03-01T09:15:02.000Z", **base, "phase": "begin",
                   "start_s": 16.06, "end_s": 16.86})
    end = human({"ts": "2026-03-01T09:15:04.000Z", **base, "phase": "end", "start_s": 16.06,
                 "end_s": 17.66, "duration_s": 1.6})
    assert begin == "09:15:02.000 talk_over        begins at 16.06 s: initiator=agent"
    assert end == "09:15:04.000 talk_over        ended 16.06-17.66 s (1.60 s): initiator=agent"
    # during a call, times count from its start, as the call's summary does
    in_call = human({"ts": "2026-03-01T09:15:04.000Z", **base, "phase": "end",
                     "start_s": 16.06, "end_s": 17.66, "duration_s": 1.6, "call_start_s": 12.0})
    assert in_call == ("09:15:04.000 talk_over        ended 4.06-5.66 s into the call (1.60 s): "
                       "initiator=agent")
    alert = {"ts": "2026-03-01T09:15:02.000Z", "event": "alert", "id": "talk_over-2",
             "kind": "talk_over", "stream": None, "severity": "warning",
             "message": "You're talking over the customer", "values": {"initiator": "agent"},
             "thresholds": {}}
    assert human({**alert, "state": "firing"}) == (
        "09:15:02.000 nudge shown      warning: You're talking over the customer")
    assert human({**alert, "state": "resolved"}) == (
        "09:15:02.000 nudge resolved   You're talking over the customer")


def test_human_line_of_a_call_end_adds_the_summary():
    summary = {"duration_s": 61.24, "talk_over": {"count": 3, "by_agent": 2, "by_customer": 1},
               "events": [{}, {}, {}, {}]}
    line = human({"ts": "2026-03-01T09:16:03.000Z", "event": "call_ended", "call_id": "c1",
                  "summary": summary})
    first, second = line.split("\n")
    assert first.rstrip().endswith("call_id=c1") and "summary" not in first
    assert second == (" " * 13 + "summary: 61.2 s, talk-over 3 (agent 2, customer 1), "
                      "4 events")


def test_cli_log_goes_to_stdout_as_json_lines_off_a_terminal_and_to_the_file(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    log = EventLog.for_cli(str(path))              # "auto": capsys's stdout is no terminal
    log.emit("started", version="0.1.0")
    log.close()
    out = capsys.readouterr().out
    assert json.loads(out)["event"] == "started"
    assert records(path)[0]["event"] == "started"


def test_cli_text_output_is_readable_and_dash_sends_json_to_stdout_too(capsys):
    log = EventLog.for_cli(None, output="text")
    log.emit("started", version="0.1.0")
    text = capsys.readouterr().out
    assert "started" in text and "version=0.1.0" in text and not text.startswith("{")
    log = EventLog.for_cli("-", output="text")
    log.emit("stopped")
    log.close()                                    # stdout itself stays open
    assert json.loads(capsys.readouterr().out)["event"] == "stopped"
    print("still open")
    assert capsys.readouterr().out == "still open\n"
