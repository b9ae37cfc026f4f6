"""Calls on the audio timeline: when one starts and ends, its summary, the crash journal that
outlives the process, and the control socket's protocol, on real files and real sockets."""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from daemon.call_cli import _request
from daemon.calls import CallTracker
from daemon.config import CaptureSettings, ControlSettings
from daemon.control import ControlServer, ControlSocketInUse, Request, socket_path
from daemon.journal import CallJournal, journal_path
from dsp import ANALYSIS_RATE
from dsp.events import Event, Kind, Phase, Stream
from dsp.pipeline import Pipeline
from dsp.stats import CallStats

STEP_S = 0.125  # a binary fraction: speech totals add up exactly


def feed(tracker: CallTracker, start_s: float, end_s: float, speaking: bool,
         speech_s: float) -> tuple[float, list[tuple[float, str]]]:
    """Observe the far end from ``start_s`` to ``end_s``; returns the cumulative speech and
    every (time, decision) the tracker made."""
    decisions = []
    t = start_s
    while t < end_s:
        t += STEP_S
        if speaking:
            speech_s += STEP_S
        d = tracker.observe(t, speech_s, speaking)
        if d is not None:
            decisions.append((t, d))
    return speech_s, decisions


def test_a_call_starts_once_the_far_end_spoke_long_enough_within_the_window():
    tracker = CallTracker(CaptureSettings(call_start_speech_s=1.0))
    speech, got = feed(tracker, 0.0, 0.5, True, 0.0)       # a notification sound
    speech, more = feed(tracker, 0.5, 20.0, False, speech)
    assert got == more == []
    speech, got = feed(tracker, 20.0, 20.625, True, speech)
    assert got == [], "speech from 20 s ago does not count towards this call"
    _, got = feed(tracker, 20.625, 21.0, True, speech)
    assert got == [(21.0, "start")]


def test_no_automatic_calls_when_they_are_off():
    tracker = CallTracker(CaptureSettings(auto_calls=False))
    _, got = feed(tracker, 0.0, 30.0, True, 0.0)
    assert got == []


def test_an_automatic_call_ends_after_the_far_end_silence_an_explicit_one_does_not():
    settings = CaptureSettings(call_end_silence_s=30.0)
    auto = CallTracker(settings)
    auto.start(10.0, 10 * ANALYSIS_RATE, 1_700_000_000.0, auto=True)
    speech, got = feed(auto, 10.0, 15.0, True, 0.0)
    assert got == []
    _, got = feed(auto, 15.0, 46.0, False, speech)
    assert got[0] == (45.0, "end")                         # 30 s after the last far speech
    explicit = CallTracker(settings)
    explicit.start(10.0, 10 * ANALYSIS_RATE, 1_700_000_000.0, auto=False)
    _, got = feed(explicit, 10.0, 200.0, False, 0.0)
    assert got == []


def test_call_ids_are_fresh_unless_given_and_calls_are_counted():
    tracker = CallTracker(CaptureSettings())
    first = tracker.start(0.0, 0, 0.0, auto=True)
    second = tracker.start(1.0, ANALYSIS_RATE, 1.0, auto=False)
    named = tracker.start(2.0, 2 * ANALYSIS_RATE, 2.0, auto=False, call_id="ticket-42")
    assert len(first.id) == 32 and int(first.id, 16) >= 0 and first.id != second.id
    assert named.id == "ticket-42" and tracker.call is named and tracker.count == 3


def real_stats(seconds: float = 3.0) -> CallStats:
    """Statistics of a real pipeline run over a few seconds of noise on both sides."""
    rng = np.random.default_rng(5)
    pipeline = Pipeline(agent_rate=ANALYSIS_RATE, customer_rate=ANALYSIS_RATE)
    n = int(seconds * ANALYSIS_RATE)
    pipeline.push(agent=(0.01 * rng.standard_normal(n)).astype(np.float32),
                  customer=(0.01 * rng.standard_normal(n)).astype(np.float32))
    return pipeline.stats


def test_the_summary_holds_the_calls_finished_events_relative_to_its_start():
    tracker = CallTracker(CaptureSettings())
    s0 = 100 * ANALYSIS_RATE
    tracker.add_events([Event(Kind.NOISE, Phase.END, Stream.AGENT, 0, ANALYSIS_RATE, {})])
    tracker.start(100.0, s0, 1_700_000_000.0, auto=False, call_id="c1")
    noise_begin = Event(Kind.NOISE, Phase.BEGIN, Stream.AGENT, s0 + ANALYSIS_RATE,
                        s0 + 2 * ANALYSIS_RATE, {})
    noise_end = Event(Kind.NOISE, Phase.END, Stream.AGENT, s0 + ANALYSIS_RATE,
                      s0 + 3 * ANALYSIS_RATE, {"floor_dbfs": -40.0})
    early = Event(Kind.SILENCE, Phase.END, None, s0 - ANALYSIS_RATE, s0 + ANALYSIS_RATE, {})
    tracker.add_events([noise_begin, noise_end])
    stats = real_stats()
    running = tracker.running_summary(stats, 104.0)
    assert tracker.call is not None and running["duration_s"] == 4.0
    call, summary = tracker.end(stats, [early], 106.5)
    assert call.id == "c1" and tracker.call is None
    assert summary["schema"] == "callwatch.analysis/1" and summary["duration_s"] == 6.5
    assert summary["events"] == [   # only END events, none from before the call, clamped at 0
        {"kind": "silence", "stream": None, "start_s": 0.0, "end_s": 1.0},
        {"kind": "noise", "stream": "agent", "start_s": 1.0, "end_s": 3.0, "floor_dbfs": -40.0},
    ]
    assert running["events"] == summary["events"][1:]


# -- journal ---------------------------------------------------------------------------------


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


# -- control socket --------------------------------------------------------------------------


def test_socket_path_is_the_configured_one_else_in_the_runtime_directory(tmp_path, monkeypatch):
    assert socket_path(ControlSettings(socket_path=str(tmp_path / "c.sock"))) == \
        tmp_path / "c.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert socket_path(ControlSettings()) == tmp_path / "run" / "callwatch" / "control.sock"


@pytest.fixture
def control(tmp_path) -> Iterator[tuple[ControlServer, list[Request]]]:
    """A control server whose requests a loop thread answers like the daemon does."""
    requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
    server = ControlServer(tmp_path / "ctl" / "control.sock", requests)
    seen: list[Request] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                req = requests.get(timeout=0.05)
            except queue.Empty:
                continue
            seen.append(req)
            req.reply.put({"ok": True, "command": req.command, "arg": req.arg})

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    server.start()
    yield server, seen
    server.stop()
    stop.set()
    thread.join()


def ask(server: ControlServer, line: str) -> dict:
    return json.loads(_request(server.path, line))


def test_requests_reach_the_loop_and_its_reply_comes_back(control):
    server, seen = control
    assert ask(server, "status") == {"ok": True, "command": "status", "arg": None}
    assert ask(server, "START ticket-42 extra") == {"ok": True, "command": "start",
                                                     "arg": "ticket-42"}
    assert [(r.command, r.arg) for r in seen] == [("status", None), ("start", "ticket-42")]
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("line", "error"), [
    ("", "unknown command ''"),
    ("hangup", "unknown command 'hangup'; use start [ID], end or status"),
    ("start bad/id", "call id: 1-64 letters, digits, _ . : -"),
    ("start " + "x" * 65, "call id: 1-64 letters"),
])
def test_bad_requests_are_answered_without_bothering_the_loop(control, line, error):
    server, seen = control
    reply = ask(server, line)
    assert reply["ok"] is False and reply["error"].startswith(error)
    assert seen == []


def test_a_stale_socket_is_replaced_and_a_live_one_is_refused(tmp_path):
    path = tmp_path / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()                                   # a daemon that died: the file stays
    first = ControlServer(path, queue.SimpleQueue())
    first.start()
    try:
        second = ControlServer(path, queue.SimpleQueue())
        with pytest.raises(ControlSocketInUse, match="another callwatch is running"):
            second.start()
        assert path.exists(), "the refused server must not remove the running one's socket"
    finally:
        first.stop()
    assert not path.exists()
    with pytest.raises(OSError):
        _request(path, "status")


def test_runtime_directory_is_used_as_it_is_and_the_socket_directory_made_private(
        tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    server = ControlServer(socket_path(ControlSettings()), queue.SimpleQueue())
    server.start()
    try:
        assert stat.S_IMODE(os.stat(run / "callwatch").st_mode) == 0o700
        assert stat.S_IMODE(run.stat().st_mode) == 0o755
    finally:
        server.stop()



def test_an_ended_calls_far_end_speech_does_not_start_the_next_call():
    """`callwatch call end` while the customer is still talking: no new call from the ended
    call's tail; the next one starts on far-end speech after a quiet spell."""
    tracker = CallTracker(CaptureSettings(call_start_speech_s=1.0))
    tracker.start(0.0, 0, 1_700_000_000.0, auto=False)
    speech, got = feed(tracker, 0.0, 10.0, True, 0.0)
    tracker.end(real_stats(), [], 10.0)
    speech, got = feed(tracker, 10.0, 15.0, True, speech)  # still talking as it ends
    assert got == []
    speech, got = feed(tracker, 15.0, 16.5, False, speech)  # quiet, not long enough
    speech, more = feed(tracker, 16.5, 17.0, True, speech)
    assert got == more == []
    speech, got = feed(tracker, 17.0, 20.0, False, speech)
    assert got == []
    speech, got = feed(tracker, 20.0, 21.0, True, speech)   # the next call's far end
    assert got == [(21.0, "start")]
