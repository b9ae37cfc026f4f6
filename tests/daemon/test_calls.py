"""Calls on the audio timeline: when one starts and ends, and its summary. The crash journal
is in test_journal, the control socket in test_control."""

from __future__ import annotations

import numpy as np

from daemon.calls import CallTracker
from daemon.config import CaptureSettings
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
