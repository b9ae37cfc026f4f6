"""The monitoring itself: audio in the rings becomes events, and events become calls, alerts,
log lines, WebSocket messages and metrics.

:class:`Monitor` is what one pass of the processing loop (:mod:`daemon.service`) does:

1. follows each source to its current epoch (a reopened device), reads new samples and
   capture timestamps from its ring;
2. aligns the two streams on one timeline (:mod:`dsp.align`), silence for a stream that is
   down, so the other keeps being analysed;
3. runs the pipeline in chunks of at most :data:`PUSH_MAX_S`, so the interpreter switches to
   the audio threads often; live, it holds the audio back while no event can come of it
   (:mod:`dsp.hold`), and skips the ticks at which none could;
4. hands the events to the call tracker, the alert policy and the :class:`Publisher`, and a
   few times a second the statistics to the metrics and the page's level meters.

It also starts and ends calls on the audio timeline (control requests, automatic detection,
shutdown) and keeps the crash journal of the call in progress. It runs on the loop's thread
only, like the pipeline it drives, which is not thread-safe.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from alerts.policy import AlertPolicy, AlertSettings
from daemon.calls import Call, CallTracker
from daemon.capture import CaptureStream
from daemon.config import CaptureSettings, Config
from daemon.epoch import GridPhase, StreamReader, next_grid_tick
from daemon.hearing import HearingTracker
from daemon.inputs import Source
from daemon.journal import JOURNAL_EVERY_S, CallJournal, journal_path
from daemon.metrics import PublishedStats
from daemon.metrics_hearing import HearingReading
from daemon.publish import Publisher
from daemon.pulse_reader import PulseInputStream
from daemon.state import StreamHealth
from dsp import ANALYSIS_RATE, FRAME_S
from dsp.align import Aligner
from dsp.events import Event, Kind
from dsp.hearing import HearingSettings
from dsp.hold import InputHold
from dsp.pipeline import Pipeline
from dsp.settings import DetectorSettings

__all__ = ["HOLD_MAX_S", "LEVELS_EVERY_S", "PASS_MAX_S", "PUSH_MAX_S", "Monitor"]

PUSH_MAX_S = 0.5
"""Audio per pipeline call: bounds the time between interpreter switches to the callbacks."""

PASS_MAX_S = 5.0
"""Audio per loop pass, so signals, control requests and the watchdog are served promptly."""

LEVELS_EVERY_S = 0.25
"""Live level meters go out, and automatic call start/end is decided, at 4 Hz."""

HOLD_MAX_S = 0.5
"""Live audio is held back from the pipeline at most this long (:attr:`LEVELS_EVERY_S` while
the page is open, for its meters): the statistics, call detection and ``END`` events lag by
at most this much."""

POLICY_MARGIN_S = 0.1
"""Held audio ends at least this long before the alert policy's next timer runs out."""


class Monitor:
    """The pipeline and what follows it, for one run of the daemon."""

    def __init__(self, cfg: Config, sources: Mapping[str, Source],
                 health: Mapping[str, StreamHealth], hearing: HearingTracker,
                 calls: CallTracker, out: Publisher, policy: AlertPolicy | None,
                 published: PublishedStats | None, wall0: float, live: bool) -> None:
        """``health``: per source, where its capture counters are copied. ``hearing``:
        today's exposure, at the sensitivity the pipeline is built with. ``published``:
        where the statistics are handed to the metrics' scrapes (with metrics only).
        ``wall0``: the wall-clock time the pipeline's sample 0 stands for (alert and call
        times count from it). ``live``: devices, whose events carry their latency; else a replay."""
        self.sources = sources
        self.health = health
        self.rates = {n: int(s.rate) for n, s in sources.items()}
        self.pipeline = Pipeline(cfg.detectors, self.rates["agent"], self.rates["customer"],
                                 dataclasses.replace(cfg.hearing,
                                                     dbspl_at_0dbfs=hearing.sensitivity or 0.0))
        self.aligner = Aligner(self.rates["agent"], self.rates["customer"],
                               cfg.capture.skew_window_s)
        self.readers = {n: StreamReader() for n in sources}
        self.hearing = hearing
        self.calls = calls
        self.out = out
        self.state = out.state
        self.policy = policy
        self.wall0 = wall0
        self.live = live
        self.published = published
        self.journal: CallJournal | None = None
        self.hearing_reading: HearingReading | None = None
        """The last hearing reading, for the hearing collector."""
        self.grid = GridPhase(FRAME_S)
        """The phase of the capture threads' shared tick grid, steered against the frames."""
        self._heard: tuple[float, float] | None = None
        """The far end's A-weighted totals as last fed to :attr:`hearing`."""
        self.last_audio = 0.0
        """Monotonic time audio was last processed (the watchdog's proof of life)."""
        self.last_levels = -1.0
        self.processed_s = 0.0
        self.hold = InputHold(self.pipeline)
        """Live audio read but not yet pushed."""
        self.rest_s = 0.0
        """Seconds of audio that can come, after what the last pass took, before the next is
        needed: the ticks before are skipped (see :meth:`next_tick`)."""
        self._rest_from = 0.0
        """Capture time (monotonic) of the end of the audio the last pass took, or the pass's
        own time when it took none."""
        self._holding_off = False
        """Set while :meth:`catch_up` reads: nothing is held."""

    def media_now(self) -> float:
        """Wall-clock time of the audio being processed (replays run on their own clock)."""
        return self.wall0 + self.pipeline.position / ANALYSIS_RATE

    # -- one pass ---------------------------------------------------------------------------

    def next_tick(self, now: float) -> tuple[float, PulseInputStream | None] | None:
        """When the streams on the shared tick grid (the libpulse streams this loop reads
        itself) are next due to be read, and the one among them whose capture time is due by
        then (the loop sleeps in its main loop to time it); None without such streams."""
        tick = None
        due: PulseInputStream | None = None
        # The audio that can come before a pass is needed ends at this capture time: no
        # packet can bring it before then, so the ticks before it have nothing to do.
        rest_until = self._rest_from + self.rest_s
        for src in self.sources.values():
            ep = src.epoch
            s = getattr(src, "stream", None)
            if ep is None or ep.grid_s is None or ep.finished or not isinstance(
                    s, PulseInputStream):
                continue
            tick = next_grid_tick(now, ep.grid_phase_s, ep.grid_s, rest_until)
            if s.next_stamp <= tick and (due is None or s.next_stamp < due.next_stamp):
                due = s
        return None if tick is None else (tick, due)

    def process_pass(self) -> bool:
        """One pass over the rings; True if it stopped at the work cap (more is waiting)."""
        self._rest_from = time.monotonic()
        self.rest_s = 0.0
        up = {}
        for src in self.sources.values():
            if isinstance(src, CaptureStream):
                src.pump()
        for name, src in self.sources.items():
            r = self.readers[name]
            al = self.aligner.streams[name]
            if r.switch(src.epoch):
                al.new_epoch()
            for n, t in r.read_timestamps():
                al.add_timestamp(n, t)
            al.add_samples(r.read_samples())
            ep = src.epoch
            # A capture stream that delivers audio counts as up before the supervisor has
            # announced it; a replay is always up.
            up[name] = bool(src.up or (isinstance(src, CaptureStream) and src.stream is not None
                                       and ep is not None and ep.callbacks > 0))
        self._copy_counters()
        got = self.aligner.pull(up)
        if got is None:
            self._serve_scrape()
            return False
        agent, customer = got
        self.last_audio = time.monotonic()
        al = self.aligner
        if self.live and al.t0 is not None and al.emitted_until is not None:
            self.grid.observe(al.emitted_until, al.t0,
                              (src.epoch for src in self.sources.values()))
        total = self._duration(agent, customer)
        if self.live:
            if al.emitted_until is not None:
                self._rest_from = al.emitted_until
            got = self.hold.offer(agent, customer, total, self._hold_most_s())
            self.rest_s = self.hold.rest_s
            if got is None:
                return False
            agent, customer = got
            total = self._duration(agent, customer)
        self._push(agent, customer, total)
        self._serve_scrape()
        if self.live:
            self.rest_s = max(0.0, self.hold.holdable_s(self._hold_most_s()))
        if not self.live:  # a fast replay fills the rings: drain without sleeping
            return any(src.epoch.ring.available() * 2 >= src.epoch.ring.capacity
                       for src in self.sources.values() if src.epoch is not None)
        return total >= PASS_MAX_S

    def catch_up(self) -> None:
        """Read the streams and push all their audio up to now, holding none back (before a
        request from outside places a call on the audio timeline: the loop may have slept
        through up to :data:`HOLD_MAX_S` of audio still unread)."""
        if self.live:
            self._holding_off = True
            try:
                while self.process_pass():
                    pass
            finally:
                self._holding_off = False
        self.flush()

    def flush(self) -> None:
        """Push the audio held back (before anything reads or changes the pipeline's state
        from outside a pass: calls, settings, the status)."""
        got = self.hold.take()
        if got is not None:
            self._push(*got, self._duration(*got))

    def _duration(self, agent: np.ndarray, customer: np.ndarray) -> float:
        ra, rc = self.aligner.streams["agent"].rate, self.aligner.streams["customer"].rate
        return max(len(agent) / ra, len(customer) / rc)

    def _hold_most_s(self) -> float:
        """The longest live audio may wait for the pipeline: :data:`HOLD_MAX_S`
        (:data:`LEVELS_EVERY_S` while the page is open, for its meters), short of the alert
        policy's next timer (whose nudges fire or resolve on time and in order), and not at
        all while a metrics scrape waits or a dead-air nudge shows (it goes at the first
        word)."""
        if self._holding_off or (self.published is not None and self.published.wanted):
            return 0.0
        if self.policy is not None and self.policy.awaiting_end:
            return 0.0
        most = (LEVELS_EVERY_S if self.out.server is not None and self.out.server.clients
                else HOLD_MAX_S)
        due = self.policy.next_due() if self.policy is not None else None
        if due is not None:
            most = min(most, due - self.media_now() - POLICY_MARGIN_S)
        return most

    def _push(self, agent: np.ndarray, customer: np.ndarray, total: float) -> None:
        ra, rc = self.aligner.streams["agent"].rate, self.aligner.streams["customer"].rate
        step = PUSH_MAX_S
        i = 0.0
        while i < total:
            a = agent[round(i * ra):round((i + step) * ra)]
            c = customer[round(i * rc):round((i + step) * rc)]
            self._after_audio(self.pipeline.push(a, c))
            i += step
        self.processed_s += total

    def _copy_counters(self) -> None:
        """The capture counters each reader has gathered, into the streams' health."""
        for name, r in self.readers.items():
            overflows, callbacks, overruns = r.totals()
            h = self.health[name]
            h.overflows = overflows
            h.callbacks = callbacks
            h.dropped_blocks = overruns

    def _after_audio(self, events: list[Event]) -> None:
        now_s = self.pipeline.position / ANALYSIS_RATE
        p = self.pipeline
        heard = p.far_end_heard
        if heard != self._heard:
            # The far end's totals move once per segment (a second of audio): the day's
            # exposure has nothing new before, and a pass stays cheap.
            self._heard = heard
            events = events + self.hearing.feed(*heard, dt.date.today(), p.position,
                                                time.monotonic())
        r, snap = self.hearing_reading, self.hearing.snapshot
        shocks, laeq = p.acoustic_shocks, p.far_end_laeq_dbfs
        if r is None or r.exposure is not snap or r.acoustic_shocks != shocks \
                or r.far_end_laeq_dbfs != laeq:
            self.hearing_reading = HearingReading(snap, shocks, laeq)
        if events:
            self.calls.add_events(events)
            self.out.events(events, self.calls.call,
                            self.aligner.t0 if self.live else None)
        if self.policy is not None:
            # Dead air outside a call is just an idle workstation.
            relevant = events if self.calls.call else [e for e in events
                                                       if e.kind is not Kind.SILENCE]
            self.out.alerts(self.policy.update(relevant, self.media_now(),
                                               self.pipeline.position), self.policy)
        if now_s - self.last_levels < LEVELS_EVERY_S:
            return
        # A few times a second: call detection, the journal, the page's meters. Stats
        # snapshots cost more than a pass of the loop: taken only for an open page (and
        # for a scrape, see _serve_scrape).
        self.last_levels = now_s
        decision = self.calls.observe(now_s, *self.pipeline.far_end_talk)
        if decision == "start":
            self.start_call(auto=True, call_id=None)
        elif decision == "end":
            self.end_call("far end silent")
        self._journal_call(now_s)
        if self.out.server is not None and self.out.server.clients:
            self.out.levels(self.pipeline.stats, self.media_now())

    def _serve_scrape(self) -> None:
        """Publish the statistics when a metrics scrape has asked for them (it waits)."""
        if self.published is not None and self.published.wanted:
            self.published.publish(self.pipeline)

    # -- settings ---------------------------------------------------------------------------

    def configure(self, detectors: DetectorSettings, alerts: AlertSettings | None,
                  capture: CaptureSettings) -> None:
        """New detector, alert and call settings (a reload); the call in progress goes on."""
        self.flush()
        self.pipeline.update_settings(detectors)
        if self.policy is not None and alerts is not None:
            self.policy.update_settings(alerts)
        self.calls.settings = capture

    def configure_hearing(self, settings: HearingSettings, sensitivity: float | None,
                          source: str) -> None:
        """New ``[hearing]`` settings or headset sensitivity; today's dose is kept."""
        self.flush()
        self.hearing.configure(settings, sensitivity, source)
        self.pipeline.update_hearing(dataclasses.replace(settings,
                                                         dbspl_at_0dbfs=sensitivity or 0.0))

    def snooze(self, kind: Kind, minutes: float) -> None:
        """An agent snoozed ``kind`` on the page: its alert resolves now if it was firing."""
        self.flush()
        if self.policy is not None:
            self.policy.snooze(kind, self.media_now() + 60.0 * float(minutes))
            self.out.alerts(self.policy.tick(self.media_now()), self.policy)

    # -- calls ------------------------------------------------------------------------------

    def open_journal(self, control_socket: Path | None) -> None:
        """The journal next to ``control_socket`` (``None``: none). A call the previous run
        never ended (killed, crashed) is reported now from its last journalled state.
        Without a writable state directory the daemon goes on without a journal."""
        if control_socket is None:
            return
        try:
            journal = CallJournal(journal_path(control_socket))
            lost = journal.recover()
        except OSError as exc:
            self.out.log.emit("journal_error", error=str(exc))
            return
        if lost is not None:
            self.out.log.emit("call_ended", call_id=lost["call_id"], reason="crashed",
                              saved_at=lost.get("saved_at"), summary=lost.get("summary"))
        self.journal = journal

    def _journal_call(self, now_s: float) -> None:
        if self.journal is None or self.calls.call is None:
            return
        if now_s - self.journal.last_s < JOURNAL_EVERY_S:
            return
        try:
            self.journal.checkpoint(self.calls.call,
                                    self.calls.running_summary(self.pipeline.stats, now_s), now_s)
        except OSError as exc:  # a full disk: keep monitoring, stop journalling
            self.out.log.emit("journal_error", error=str(exc))
            self.journal = None

    def start_call(self, auto: bool, call_id: str | None) -> Call:
        """Start a call here on the audio timeline, ending the one in progress if any."""
        self.flush()
        if self.calls.call is not None:
            self.end_call("new call started")
        idle = self.pipeline.start_call()
        self.out.events(idle, None)  # dead air between calls: logged, not the new call's
        pos = self.pipeline.position
        call = self.calls.start(pos / ANALYSIS_RATE, pos, self.media_now(), auto, call_id)
        self.state.calls_total = self.calls.count
        self.state.call_active = True
        if self.journal is not None:
            self.journal.clear()
        self.out.call_started(call.id, auto, self.media_now())
        return call

    def end_call(self, reason: str) -> tuple[Call, dict[str, Any]] | None:
        """End the call in progress: its closing events and alerts, then its summary."""
        self.flush()
        if self.calls.call is None:
            return None
        closing = self.pipeline.end_call()
        self.out.events(closing, self.calls.call)
        if self.policy is not None:
            self.out.alerts(self.policy.update(closing, self.media_now(),
                                               self.pipeline.position), self.policy)
        call, summary = self.calls.end(self.pipeline.stats, closing,
                                       self.pipeline.position / ANALYSIS_RATE)
        if self.published is not None:
            self.published.publish(self.pipeline)
        self.state.call_active = False
        if self.journal is not None:
            self.journal.clear()
        self.out.call_ended(call.id, reason, summary, self.media_now())
        return call, summary

    def close(self) -> None:
        """Close the journal and save today's exposure (at shutdown, after the last call)."""
        if self.journal is not None:
            self.journal.close()
        self.hearing.save()
