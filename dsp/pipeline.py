"""The detection pipeline: both sides of a call in, typed events out.

One pipeline serves live capture, live replay and file analysis. Each stream is converted to
float, resampled to :data:`dsp.ANALYSIS_RATE` and cut into fixed 20 ms frames; frames are only
processed when both streams have them.

A frame is *speech* only if webrtcvad says so **and** it stands out of that party's noise (its
minimum floor by ``speech_margin_db`` and its background level by
:data:`NOISE_LEVEL_MARGIN_DB`), is not a click (keystrokes), **and**, for the agent, stands out
of the far-end leak that the echo estimator predicts. WebRTC's VAD alone marks most babble,
traffic, keystrokes and speaker leak as speech; these gates are what keep a noisy room or
laptop speakers from producing false talk-overs. The VAD is not even asked about frames that
fail the energy gates, which also makes the pipeline fast.

Work is split by what needs frame resolution:

* per frame (in a tight loop): talk spurts, talk-over and dead air, so a talk-over is
  reported as soon as it has lasted ``min_overlap_s``;
* per 1-second *segment* (boundaries at fixed frame indices): noise level, speech level,
  clipping, dead mic and the echo estimate. Their windows are seconds long anyway, and the
  gates of a segment use the state as it was at the segment's start.

Because segment boundaries are fixed by frame index, not by how the input was chunked, the
events are the same whatever the block sizes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S
from dsp.activity import SpurtChange
from dsp.block import Block, sanitize, split_features
from dsp.clicks import impulsive
from dsp.detectors.acoustic_shock import AcousticShock
from dsp.detectors.dead_air import DeadAir
from dsp.detectors.dead_mic import DeadMic
from dsp.detectors.echo import Echo
from dsp.detectors.loud_far_end import LoudFarEnd
from dsp.detectors.pace import FastSpeech
from dsp.detectors.segment import PartyJudges
from dsp.detectors.talkover import TalkOver
from dsp.detectors.turns import Turns
from dsp.early_leak import EarlyLeakHold, HoldState
from dsp.echo import EchoEstimator, FarDelayLine
from dsp.events import Event, Stream
from dsp.heard_speech import HeardFrames
from dsp.hearing import HearingSettings
from dsp.levels import frame_features
from dsp.party import SEGMENT_FRAMES, Party, frames
from dsp.passes import Pass, SpeechPass
from dsp.settings import DetectorSettings
from dsp.speech_time import Change, change
from dsp.stats import CallStats, TalkOverStats
from dsp.tones import LineTones
from dsp.vad import to_pcm16
from dsp.voice_confirm import needs_check

MIN_RATE_SPEECH_S = 10.0
"""A party's speaking rate is reported once they have talked this long in the call."""

QUIET_ROUNDING_S = 1e-6
""":attr:`Pipeline.quiet_s` errs this much short, so that float rounding in a caller's sum of
held seconds never holds back the sample that is due."""

BLOCK_FRAMES = 250
"""At most this many frames are processed per inner step (bounds memory and GIL holds)."""


class Pipeline:
    """Both streams of one workstation (or one recorded call) through every detector."""

    def __init__(
        self,
        settings: DetectorSettings | None = None,
        agent_rate: int = ANALYSIS_RATE,
        customer_rate: int = ANALYSIS_RATE,
        hearing: HearingSettings | None = None,
    ) -> None:
        s = settings or DetectorSettings()
        self._s = s
        self._agent = Party(Stream.AGENT, agent_rate, s)
        self._customer = Party(Stream.CUSTOMER, customer_rate, s)
        self._frame = 0
        self._call_start_frame = 0
        self._max_lag = frames(s.echo_max_delay_ms / 1000.0)
        self._echo = EchoEstimator(self._max_lag)
        self._far = FarDelayLine(self._max_lag)
        self._tones = LineTones()
        self._passes: list[Pass] = []
        """What the passes since the last :meth:`_catch_up` left for it."""
        self._speech_pending: list[SpeechPass] = []
        """The passes since the speech-time counters were last fed."""
        self._early_leak = EarlyLeakHold()
        self._heard = (HeardFrames(), HeardFrames())
        """silero's view of each party's speech time in noise (:mod:`dsp.heard_speech`)."""
        self._talkover = TalkOver(s, self._echo)
        self._dead_air = DeadAir(s)
        self._dead_mic = DeadMic(s)
        self._echo_verdict = Echo(s, self._echo)
        self._fast_speech = FastSpeech(self._agent.pace, s)
        self._turns = Turns(s)
        # What reaches the agent's ears: the far end, whatever it carries.
        self._shock = AcousticShock(hearing or HearingSettings())
        self._loud_far_end = LoudFarEnd(hearing or HearingSettings())
        self._judges = {p.stream: PartyJudges(p, s) for p in (self._agent, self._customer)}
        self.update_settings(s)
        self._speech_stale = False
        """The parties' ``speech_frames[0]`` lag their speech time: brought up to date when
        a snapshot reads them (counting the undecided frames costs more than a pass)."""
        self._primed = False
        self._finished = False

    # -- public API -------------------------------------------------------------------------

    @property
    def settings(self) -> DetectorSettings:
        return self._s

    @property
    def position(self) -> int:
        """Analysis samples processed on both streams."""
        return self._frame * FRAME_LEN

    @property
    def quiet_s(self) -> float:
        """Seconds of input, past what was pushed, that can come before any of it could
        bring a ``BEGIN``, acoustic shocks aside (see :meth:`could_shock`); 0 or less when
        the next push could.

        A live caller that holds input back until this much has come, and pushes it in one
        call, sees every ``BEGIN`` as soon as a caller pushing every block would, in far fewer
        passes: on an interpreter a pass costs about the same for 20 or 200 ms of audio.
        Frame-resolution detectors say when they could next confirm (talk-over, dead air);
        every other ``BEGIN`` comes at a segment end. The events are the same either way
        (they do not depend on chunking); only ``END`` events may come later, by at most what
        was held. Input pushed but not yet processed (a resampler's delay, part of a frame)
        counts as come."""
        f = self._frame
        due = (f // SEGMENT_FRAMES + 1) * SEGMENT_FRAMES
        a, c = self._agent.spurts, self._customer.spurts
        due = min(due, self._talkover.earliest_begin(f, a, c))
        dead_air = self._dead_air.earliest_begin(f, a, c)
        if dead_air is not None:
            due = min(due, dead_air)
        taken_s = max(p.taken / p.rate for p in (self._agent, self._customer))
        return due * FRAME_S - taken_s - QUIET_ROUNDING_S

    def could_shock(self, customer: np.ndarray) -> bool:
        """Whether far-end samples not yet pushed could start an acoustic shock (see
        :meth:`dsp.detectors.acoustic_shock.AcousticShock.could_begin`): a caller holding
        input back pushes at once when they could."""
        return self._shock.could_begin(customer)

    def update_settings(self, settings: DetectorSettings) -> None:
        """Apply thresholds: at construction and on reload (SIGHUP), the one configuration
        path. No state or audio is lost; a new ``echo_max_delay_ms`` restarts the echo
        estimate (its delay range changed), keeping the far end's recent levels."""
        self._catch_up()  # what came before is measured as it was set up then
        self._s = settings
        self._clip_level = settings.clip_level
        for party in (self._agent, self._customer):
            party.configure(settings)
        max_lag = frames(settings.echo_max_delay_ms / 1000.0)
        if max_lag != self._max_lag:
            self._max_lag = max_lag
            self._echo = EchoEstimator(max_lag)
            self._echo_verdict.estimator = self._echo
            self._far.resize(max_lag)
        self._talkover.configure(settings, self._echo)
        self._dead_air.configure(settings)
        self._dead_mic.configure(settings)
        self._echo_verdict.configure(settings)
        self._fast_speech.configure(settings)
        self._turns.configure(settings)
        for judges in self._judges.values():
            judges.configure(settings)

    def update_hearing(self, hearing: HearingSettings) -> None:
        """Apply the ``[hearing]`` table (headset sensitivity, shock and loudness limits)."""
        self._shock.configure(hearing)
        self._loud_far_end.configure(hearing)

    @property
    def far_end_heard(self) -> tuple[float, float]:
        """A-weighted far-end energy (FS²·s) and its seconds since creation: the exposure."""
        return self._loud_far_end.energy_fs2_s, self._loud_far_end.seconds

    @property
    def acoustic_shocks(self) -> int:
        """Acoustic shocks begun since creation."""
        return self._shock.count

    @property
    def far_end_laeq_dbfs(self) -> float | None:
        """The far end's A-weighted level over the last seconds, dBFS."""
        return self._loud_far_end.laeq_dbfs

    def push(
        self, agent: np.ndarray | None = None, customer: np.ndarray | None = None
    ) -> list[Event]:
        """Add samples of either or both streams; process every frame both streams have."""
        if self._finished:
            raise RuntimeError("push() after finish(): start a new Pipeline")
        for party, x in ((self._agent, agent), (self._customer, customer)):
            if x is not None and len(x):
                party.take(sanitize(np.asarray(x).ravel()))
        return self._run()

    def finish(self) -> list[Event]:
        """End of input: flush the resamplers, process what is left, close open conditions."""
        if self._finished:
            return []
        for party in (self._agent, self._customer):
            party.flush()
        events = self._run(final=True)
        self._catch_up()
        self._early_leak.release(self._echo, self._agent.speech_time)
        for party in (self._agent, self._customer):
            party.pace.finish()
            party.speech_time.flush(self._frame)
            party.speech_frames[0] = party.speech_time.so_far(0)
            party.speech_frames[1] = party.speech_time.so_far(1)
        self._speech_stale = False
        events.extend(self.end_call())
        self._finished = True
        return events

    def start_call(self) -> list[Event]:
        """Reset the per-call statistics; adaptive state (noise floors, echo) carries on.

        Returns the dead air of an idle workstation (it began after the last call ended),
        closed here: dead air is a call's, and one still open would be carried into the new
        call's report from before its start."""
        self._catch_up()
        closed = self._dead_air.close(self._frame)
        self._call_start_frame = self._frame
        self._dead_air.start_call(self._frame)
        self._speech_stale = False
        for party in (self._agent, self._customer):
            party.audio_frames[0] = party.speech_frames[0] = party.clipped[0] = 0
            party.spurts.start_call(self._frame)
            party.speech_time.start_call(self._frame)
            party.pace.start_call()
            party.meter.reset()
            party.noise.start_call()
        self._talkover.start_call()
        self._turns.start_call(self._frame)
        return closed

    def end_call(self) -> list[Event]:
        """Close every open condition at the current position (call over or input ended)."""
        i = self._frame
        out = self._talkover.close(i, self._agent.spurts, self._customer.spurts)
        for judges in self._judges.values():
            out += judges.close(i)
        out += self._dead_air.close(i)
        out += self._echo_verdict.close(i)
        out += self._dead_mic.close(i)
        out += self._fast_speech.close(i)
        out += self._turns.close(i)
        out += self._shock.close(i)
        out += self._loud_far_end.close(i)
        # The next call's far end is someone else, on another line: held to this customer's
        # level, a quieter one would not be heard (nor their call detected) until their
        # turns showed the drop (dsp.voice_drop).
        self._customer.forget_voice()
        return out

    @property
    def stats(self) -> CallStats:
        """Statistics since the last :meth:`start_call` (or since creation)."""
        return self._snapshot(0)

    @property
    def totals(self) -> CallStats:
        """Statistics since creation: monotonic, for counters."""
        return self._snapshot(1)

    @property
    def far_end_talk(self) -> tuple[float, bool]:
        """The customer's speech seconds since creation and whether they talk now: what
        :attr:`totals` says of them, without the rest of a snapshot (for call detection,
        several times a second)."""
        self._catch_up_speech()
        c = self._customer
        return c.speech_frames[1] * FRAME_S, c.spurts.active

    # -- internals --------------------------------------------------------------------------

    def _snapshot(self, span: int) -> CallStats:
        self._catch_up()
        if self._speech_stale:
            self._speech_stale = False
            for party in (self._agent, self._customer):
                party.speech_frames[0] = party.speech_time.so_far(0)
        count, nframes, by_agent, by_customer, f_agent, f_customer = self._talkover.counts[span]
        duration = (self._frame - (self._call_start_frame if span == 0 else 0)) * FRAME_S
        agent, customer = self._agent.snapshot(span), self._customer.snapshot(span)
        total = agent.speech_s + customer.speech_s
        agent, customer = (
            dataclasses.replace(
                st, talk_share=st.speech_s / total if total else None,
                longest_turn_s=self._turns.longest_s(party.stream),
                speech_rate_sps=party.pace.rate_sps()
                if party.pace.speech_s >= MIN_RATE_SPEECH_S else None)
            for st, party in ((agent, self._agent), (customer, self._customer)))
        return CallStats(
            agent=agent,
            customer=customer,
            talk_over=TalkOverStats(count, nframes * FRAME_S, by_agent, by_customer,
                                    f_agent * FRAME_S, f_customer * FRAME_S,
                                    "silero" if self._talkover.confirms else "off"),
            duration_s=duration,
        )

    def _run(self, final: bool = False) -> list[Event]:
        events: list[Event] = []
        while True:
            n = min(self._agent.framer.frames_available, self._customer.framer.frames_available)
            if n == 0:
                return events
            if self._frame == 0 and not self._primed:
                # Wait for the first whole segment and estimate each party's background from
                # it, so the first second is judged against the noise like every other.
                if n < SEGMENT_FRAMES and not final:
                    return events
                for party in (self._agent, self._customer):
                    first = party.framer.peek(min(n, SEGMENT_FRAMES))
                    party.noise_all.seed(frame_features(first, self._clip_level).rms_dbfs)
                self._primed = True
            n = min(n, BLOCK_FRAMES)
            self._process_block(self._agent.framer.pop(n), self._customer.framer.pop(n), events)

    def _process_block(self, a: np.ndarray, c: np.ndarray, events: list[Event]) -> None:
        """Compute what depends only on the samples for the whole block at once (features,
        PCM for the VAD, clicks, far-end delay lines), then step through it segment by
        segment, since segment ends change the state the gates use."""
        n = len(a)
        both = np.concatenate((a, c))  # both parties' frames, measured in one call
        fa, fc = split_features(frame_features(both, self._clip_level), n)
        pcm = to_pcm16(both)
        blk = Block(fa, fc, pcm[:n], pcm[n:], impulsive(fa, a), impulsive(fc, c))
        self._tones.mark(blk, a, c)  # signalling tones are left out as clicks are
        blk.far_lagged = self._far.lagged(fc.rms_dbfs)
        start = 0
        while start < len(a):
            end = min(len(a), start + SEGMENT_FRAMES - self._frame % SEGMENT_FRAMES)
            whole = start == 0 and end == len(a)
            self._process(a if whole else a[start:end], c if whole else c[start:end],
                          blk if whole else blk.slice(start, end), events)
            start = end

    def _process(self, a: np.ndarray, c: np.ndarray, blk: Block, events: list[Event]) -> None:
        """Frames that all lie inside one segment."""
        n = len(a)
        i0 = self._frame
        agent, cust = self._agent, self._customer
        fa, fc = blk.fa, blk.fc
        far_lagged = blk.far_lagged  # (n, lags): the far end's level at every delay

        c_speech, c_strong, c_resume, c_audible, c_held = cust.gate(fc, blk.pc, blk.c_not_speech,
                                                                     None, i0)
        echo_floor = None
        echo = self._echo
        if echo.present:
            echo_floor = echo.leak_floor(far_lagged)
        a_speech, a_strong, a_resume, a_audible, a_held = agent.gate(fa, blk.pa, blk.a_not_speech,
                                                                     echo_floor, i0, far_lagged)

        talkover = self._talkover
        checked = (False, False)
        if talkover.confirms:
            checked = (needs_check(agent.voice_dbfs(), agent.noise_reach_dbfs(i0)),
                       needs_check(cust.voice_dbfs(), cust.noise_reach_dbfs(i0)))
        talkover.record(i0, a, fa.rms_dbfs, fc.rms_dbfs, blk.a_clicks, a_strong,
                        (blk.pa, blk.pc), checked)
        if talkover.confirms:
            for party, hearing, pcm, on in zip((agent, cust), self._heard, (blk.pa, blk.pc),
                                               checked, strict=True):
                party.speech_time.heard(i0, hearing.hear(pcm if on else None, n))
        # Shocks are confirmed within a frame or two; merged into the frame loop below by
        # the frame they belong to, so the event order does not depend on chunking.
        shock, shock_at, s_next = self._shock.update(i0, c), self._shock.emit_frames, 0

        # Per frame: spurts, talk-over, dead air.
        a_sp, c_sp = agent.spurts, cust.spurts
        a_act = np.zeros(n, dtype=bool)
        c_act = np.zeros(n, dtype=bool)
        a_changes: list[Change] = []
        c_changes: list[Change] = []
        dead_air = self._dead_air
        turns = self._turns
        a_list, c_list = a_speech.tolist(), c_speech.tolist()
        a_str, c_str = a_strong.tolist(), c_strong.tolist()
        a_res, c_res = a_resume.tolist(), c_resume.tolist()
        a_aud, c_aud = a_audible.tolist(), c_audible.tolist()
        tones = blk.tones.tolist() if blk.tones.any() else None
        for k in range(n):
            i = i0 + k
            while s_next < len(shock) and shock_at[s_next] < i:
                events.append(shock[s_next])
                s_next += 1
            ac = a_sp.step(i, a_list[k], a_str[k], a_res[k])
            cc = c_sp.step(i, c_list[k], c_str[k], c_res[k])
            if ac is not SpurtChange.NONE:
                events += turns.change(Stream.AGENT, ac, a_sp)
                a_changes.append(change(i, ac, a_sp))
            if cc is not SpurtChange.NONE:
                events += turns.change(Stream.CUSTOMER, cc, c_sp)
                c_changes.append(change(i, cc, c_sp))
            a_on, c_on = a_sp.active, c_sp.active
            a_act[k] = a_on
            c_act[k] = c_on
            if tones is not None and tones[k]:
                dead_air.tone_end = i + 1
            if (a_on and c_on) or talkover.in_overlap:
                found = talkover.step(i, a_sp, c_sp, a_list[k], c_list[k], a_aud[k],
                                      c_aud[k])
                if found:
                    events += found
            if a_on or c_on:
                dead_air.any_speech = True
                if not dead_air.pending:
                    continue  # someone talks and no dead air is pending: nothing to update
            if dead_air.any_speech:
                ev = dead_air.step(i, a_sp, c_sp, ac, cc)
                if ev is not None:
                    events.append(ev)

        events += shock[s_next:]
        self._speech_pending.append(SpeechPass(i0, a_audible, a_act, a_changes, c_audible,
                                               c_act, c_changes, fa.rms_dbfs, far_lagged))
        self._passes.append(Pass(i0, a, c, fa, fc, a_speech, a_act, c_speech, c_act,
                                  None if echo_floor is None else c_act, a_held, c_held))
        if any(c_list):
            # Per pass, not in _catch_up: how much far-end speech the estimator has seen is
            # its state between estimates, and a detector may read it at any frame.
            echo.add(fa.rms_dbfs[c_speech], far_lagged[c_speech])
        self._speech_stale = True
        self._frame += n
        if self._frame % SEGMENT_FRAMES == 0:
            self._end_segment(events)

    # -- once per segment -------------------------------------------------------------------

    def _catch_up_speech(self) -> None:
        """Feed the speech-time counters the passes since they were last fed (see
        :meth:`_catch_up`), and copy their lifetime counts into the parties."""
        if not self._speech_pending:
            return
        holding = self._early_leak.state is not HoldState.DONE
        p = SpeechPass.joined(self._speech_pending, levels=holding)
        self._speech_pending.clear()
        if holding:
            self._early_leak.feed(p.i0, p.a_audible, p.a_dbfs, p.far_lagged, p.c_changes,
                                  self._agent.speech_time)
        for party, audible, active, changes in (
                (self._agent, p.a_audible, p.a_act, p.a_changes),
                (self._customer, p.c_audible, p.c_act, p.c_changes)):
            party.speech_time.block(p.i0, audible, active, changes)
            party.speech_frames[1] = party.speech_time.so_far(1)

    def _catch_up(self) -> list[Event]:
        """Hand what the passes since the last segment end gathered to what reads it only at
        segment ends, in snapshots and call detection and at the end of a call: the
        speech-time and syllable counters, the P.56 meters, the dead-mic and loud-far-end
        detectors, the counters and the segment's gatherings. Each gives the
        same results however its input is chunked, so a live pass (two frames) does not pay
        their numpy calls, each of which costs more than its work. Returns the loud-far-end
        events, which come only when the passes reach a segment end (from
        :meth:`_end_segment`)."""
        self._catch_up_speech()
        if not self._passes:
            return []
        p = Pass.joined(self._passes)
        self._passes.clear()
        i0, agent, cust = p.i0, self._agent, self._customer
        # Its events and the far end's exposure change at segment ends only.
        events = self._loud_far_end.update(i0, p.c)
        agent.pace.update(p.a, p.a_act, i0)
        cust.pace.add(p.c, p.c_act, i0)  # only its rate is read: analysed a few s at a time
        self._dead_mic.add(p.fa.rms_dbfs, int(np.count_nonzero(p.c_act)))
        if np.count_nonzero(p.a_act):
            # The agent's background changes only at segment ends, after this.
            self._dead_mic.heard(agent.noise.live_dbfs)
        agent.gather(p.a, p.a_speech, p.a_act, p.fa, p.explained, i0)
        cust.gather(p.c, p.c_speech, p.c_act, p.fc, None, i0)
        agent.voice_drop.add(p.a_held, p.a_act, p.c_act)
        cust.voice_drop.add(p.c_held, p.c_act, p.a_act)
        return events

    def _end_segment(self, events: list[Event]) -> None:
        events += self._catch_up()  # the loud-far-end judgment, first as it always came
        end = self._frame
        seg_start = end - SEGMENT_FRAMES
        for party in (self._agent, self._customer):
            events += self._judges[party.stream].end_segment(end, self._call_start_frame)
            if party.voice_drop.end_segment():
                party.forget_voice()
            sp = party.spurts
            party.last_speech_at_segment = sp.last_speech
            party.spurt_start_at_segment = sp.spurt_start if sp.active else None
        events += self._dead_mic.judge(seg_start, end)
        events += self._fast_speech.judge(end)
        events += self._turns.judge(end, self._agent.spurts, self._customer.spurts)
        if self._echo.refresh():
            events += self._echo_verdict.judge(seg_start, end)
        self._early_leak.judge(end, self._echo, self._agent.speech_time)
