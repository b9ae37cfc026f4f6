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

import math

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S
from dsp.activity import TalkSpurts
from dsp.condition import BEGIN, END, NOTHING, Condition
from dsp.echo import EchoEstimator
from dsp.events import Event, Kind, Phase, Stream
from dsp.framing import Reframer
from dsp.levels import (
    DBFS_FLOOR,
    ActiveLevelMeter,
    FrameFeatures,
    frame_features,
    power_dbfs,
    to_float32,
)
from dsp.noise import BackgroundLevel, MinimumFloor
from dsp.resample import Resampler
from dsp.settings import DetectorSettings
from dsp.stats import CallStats, StreamStats, TalkOverStats
from dsp.talkover import OverlapChange, TalkOverDetector
from dsp.vad import WebRtcVad, to_pcm16

SEGMENT_FRAMES = 50
"""One second: the resolution of the noise, level, clipping, dead-mic and echo detectors."""

BLOCK_FRAMES = 250
"""At most this many frames are processed per inner step (bounds memory and GIL holds)."""

NOISE_LEVEL_MARGIN_DB = 8.0
"""Speech must also stand this far above the party's typical background (see below). Tuned on
the development set: a margin that grew with the background's fluctuation did no better."""

BACKGROUND_WINDOW_FRAMES = 200
"""The background level is the 30th percentile of the last 4 s of frame levels: low enough to
sit in the pauses of continuous speech, high enough that babble's dips do not pull it down to
the quiet-room floor (see :class:`dsp.noise.BackgroundLevel`)."""

BACKGROUND_PERCENTILE = 30.0

SPURT_PEAK_MARGIN_DB = 7.0
"""A talk spurt starts only once a frame of it stands this far above the speech threshold
(its syllable peaks); babble, which the VAD also flags, rarely gets there."""

IMPULSE_CREST_DB = 12.5
IMPULSE_SPREAD_DB = 9.0
IMPULSE_SLICES = 8
"""Click detection: peak over RMS, and loudest over median 2.5 ms slice (see _impulsive)."""

ECHO_MARGIN_DB = 9.0
"""Agent speech must stand this far above the far-end leak the echo estimator predicts."""

LEVEL_HYSTERESIS_DB = 2.0
"""A level or noise condition resolves only this far back inside its threshold."""

QUIET_ABOVE_FLOOR_MAX_DB = 20.0
"""A mostly-silent segment is judged for noise only if its median silent frame is within this
of the minimum floor (babble sits 10-15 dB above its dips; speech the gates missed in a quiet
room, 30-40 dB)."""

FLOOR_STAT_ABOVE_MIN_MAX_DB = 12.0
"""Stricter for the call's reported noise floor, which one stray segment would bias."""

P56_DECIMATION = 2
"""The P.56 meter runs on every other sample (8 kHz, the rate P.56 is usually applied at):
its envelope has a 30 ms time constant, so halving the rate leaves the level within a few
hundredths of a dB on speech while halving its cost, the largest in the pipeline."""

WARMUP_FRAMES = 150
"""No talk-over is reported in a stream's first 3 s, while the background and the echo
estimates are still settling (babble and speaker leak look like a voice until then). The
daemon runs one pipeline for the whole session, so this only touches a file's first seconds."""

HISTORY_FRAMES = 512
"""Frame levels kept for vetting talk-overs (10 s)."""

VETO_LEAK_CORRELATION = 0.8
"""An overlap whose agent level tracks the customer's this closely is leak, not speech."""

VETO_CLICK_FRACTION = 0.2
"""An overlap in which this share of the agent's frames are clicks is typing."""

MIC_DEAD_FAR_SPEECH_S = 3.0
"""A dead mic is reported only once the far end has talked this long during it."""


def _frames(seconds: float) -> int:
    return max(1, round(seconds / FRAME_S))


def _segments(seconds: float) -> int:
    return max(1, round(seconds / (SEGMENT_FRAMES * FRAME_S)))


def _sanitize(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] whatever arrived: NaN and infinities from a broken driver or
    file must never reach the detectors (they would poison every running mean)."""
    y = to_float32(x)
    if not np.isfinite(y).all():
        y = np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(y, -1.0, 1.0, dtype=np.float32)


def _impulsive(feats: FrameFeatures, frames: np.ndarray) -> np.ndarray:
    """Frames whose energy sits in a click: keystrokes, mouse clicks, a tapped mic.

    webrtcvad flags most keystrokes as speech. A click puts its energy into a few
    milliseconds, so its peak stands far above its RMS (crest factor) and one 2.5 ms slice of
    the frame holds far more energy than the rest; voiced speech spreads its energy over the
    whole frame. Measured on the development set (typing under speech), these two limits drop
    about half of the click frames and a few per cent of speech frames, which the talk-spurt
    hangover bridges.
    """
    crest = feats.peak_dbfs - feats.rms_dbfs
    candidates = crest >= IMPULSE_CREST_DB
    if not candidates.any():
        return candidates
    sub = frames[candidates].reshape(-1, IMPULSE_SLICES, frames.shape[1] // IMPULSE_SLICES)
    energy = np.einsum("ijk,ijk->ij", sub, sub, dtype=np.float64) + 1e-20
    half = IMPULSE_SLICES // 2
    middle = np.partition(energy, (half - 1, half), axis=1)[:, half - 1 : half + 1].mean(axis=1)
    spread = 10.0 * np.log10(energy.max(axis=1) / middle)
    out = np.zeros_like(candidates)
    out[candidates] = spread >= IMPULSE_SPREAD_DB
    return out


def _median(x: np.ndarray) -> float:
    """np.median without its overhead (called once per segment and party)."""
    n = x.size
    lo, hi = (n - 1) // 2, n // 2
    part = np.partition(x, (lo, hi))
    return 0.5 * float(part[lo] + part[hi])


def _carry(old: Condition | None, on: int, off: int) -> Condition:
    """A condition with new durations that keeps the state of the one it replaces."""
    new = Condition(on, off)
    if old is not None:
        for name in ("active", "bad_run", "good_run", "start", "end"):
            setattr(new, name, getattr(old, name))
    return new


class _Block:
    """Per-frame arrays of a block (or a slice of one) that depend only on the samples."""

    __slots__ = ("a_clicks", "c_clicks", "fa", "far_lagged", "fc", "pa", "pc")

    def __init__(self, fa: FrameFeatures, fc: FrameFeatures, pa: np.ndarray, pc: np.ndarray,
                 a_clicks: np.ndarray, c_clicks: np.ndarray) -> None:
        self.fa, self.fc, self.pa, self.pc = fa, fc, pa, pc
        self.a_clicks, self.c_clicks = a_clicks, c_clicks
        self.far_lagged = np.zeros((0, 0))

    def slice(self, start: int, end: int) -> _Block:
        out = _Block(_slice_features(self.fa, start, end), _slice_features(self.fc, start, end),
                     self.pa[start:end], self.pc[start:end], self.a_clicks[start:end],
                     self.c_clicks[start:end])
        out.far_lagged = self.far_lagged[start:end]
        return out


def _slice_features(f: FrameFeatures, start: int, end: int) -> FrameFeatures:
    return FrameFeatures(f.rms_dbfs[start:end], f.peak_dbfs[start:end], f.clipped[start:end],
                         f.energy[start:end], f.frame_len)


class _Party:
    """Per-stream state: resampler, framer, VAD, spurts, noise, level window, conditions,
    counters, and what the current segment has gathered so far."""

    def __init__(self, stream: Stream, rate: int, settings: DetectorSettings) -> None:
        self.stream = stream
        self.resampler = Resampler(rate, ANALYSIS_RATE)
        self.framer = Reframer(FRAME_LEN)
        self.vad = WebRtcVad(settings.vad_mode)
        self.floor = MinimumFloor()
        self.noise = BackgroundLevel(BACKGROUND_WINDOW_FRAMES, BACKGROUND_PERCENTILE)
        self.meter = ActiveLevelMeter(ANALYSIS_RATE // P56_DECIMATION)
        self.meter_pending: list[np.ndarray] = []
        """Talk-spurt samples of the current block, measured in one call at its end."""
        self.level_energy = np.zeros(0)
        self.level_pos = 0
        self.level_count = 0
        self.spurts: TalkSpurts | None = None
        self.noise_cond: Condition | None = None
        self.quiet_cond: Condition | None = None
        self.loud_cond: Condition | None = None
        self.clip_cond: Condition | None = None
        self.configure(settings)
        # Counters, [this call, lifetime].
        self.audio_frames = [0, 0]
        self.speech_frames = [0, 0]
        self.clipped = [0, 0]
        self.last_rms = DBFS_FLOOR
        self.last_peak = DBFS_FLOOR
        self.noise_worst = DBFS_FLOOR
        self.noise_now: float | None = None
        """The noise level of the latest mostly-silent segment."""
        # The current segment's gatherings.
        self.seg_quiet = 0
        self.seg_quiet_levels: list[np.ndarray] = []
        self.seg_quiet_first = -1
        self.seg_speech: list[np.ndarray] = []
        self.seg_clipped = 0
        self.seg_levels: list[np.ndarray] = []

    def configure(self, s: DetectorSettings) -> None:
        old = self.spurts
        self.spurts = TalkSpurts(_frames(s.vad_start_s), _frames(s.vad_hangover_s))
        if old is not None:
            for name in ("active", "run", "run_strong", "spurt_start", "spurt_end",
                         "last_speech"):
                setattr(self.spurts, name, getattr(old, name))
        self.vad.set_mode(s.vad_mode)
        window = _frames(s.level_window_s)
        if window != self.level_energy.size:
            self.level_energy = np.zeros(window)
            self.level_pos = self.level_count = 0
        resolve = _frames(s.resolve_s)
        self.noise_cond = _carry(self.noise_cond, _frames(s.noise_min_s), resolve)
        self.quiet_cond = _carry(self.quiet_cond, 1, resolve)
        self.loud_cond = _carry(self.loud_cond, 1, resolve)
        self.clip_cond = _carry(self.clip_cond, 1, _segments(s.resolve_s))

    def add_speech_energy(self, energies: np.ndarray) -> None:
        size = self.level_energy.size
        for e in energies[-size:]:
            self.level_energy[self.level_pos] = e
            self.level_pos = (self.level_pos + 1) % size
        self.level_count += energies.size

    def level_dbfs(self) -> float | None:
        """Power mean of the last ``level_window_s`` of speech frames, once the window is full."""
        if self.level_count < self.level_energy.size:
            return None
        return power_dbfs(float(self.level_energy.mean()))

    def snapshot(self, span: int) -> StreamStats:
        audio = self.audio_frames[span]
        level = self.meter.level_dbfs
        noise = self.noise.call_dbfs
        snr = level - noise if level is not None and noise is not None else None
        samples = audio * FRAME_LEN
        assert self.spurts is not None
        return StreamStats(
            audio_s=audio * FRAME_S,
            speech_s=self.speech_frames[span] * FRAME_S,
            active_level_dbfs=level,
            noise_floor_dbfs=noise,
            snr_db=snr,
            clipped_samples=self.clipped[span],
            clipped_ratio=self.clipped[span] / samples if samples else 0.0,
            rms_dbfs=self.last_rms,
            peak_dbfs=self.last_peak,
            speaking=self.spurts.active,
        )


class Pipeline:
    """Both streams of one workstation (or one recorded call) through every detector."""

    def __init__(
        self,
        settings: DetectorSettings | None = None,
        agent_rate: int = ANALYSIS_RATE,
        customer_rate: int = ANALYSIS_RATE,
    ) -> None:
        self._s = settings or DetectorSettings()
        self._agent = _Party(Stream.AGENT, agent_rate, self._s)
        self._customer = _Party(Stream.CUSTOMER, customer_rate, self._s)
        self._frame = 0
        self._call_start_frame = 0
        self._any_speech = False
        self._max_lag = _frames(self._s.echo_max_delay_ms / 1000.0)
        self._echo = EchoEstimator(self._max_lag)
        self._far_tail = np.full(self._max_lag + 1, DBFS_FLOOR)
        """The customer's last frame levels, for the agent's echo gate and the estimator."""
        self._talkover = TalkOverDetector(_frames(self._s.min_overlap_s))
        self._a_hist = np.zeros(HISTORY_FRAMES)
        self._c_hist = np.zeros(HISTORY_FRAMES)
        self._click_hist = np.zeros(HISTORY_FRAMES, dtype=bool)
        """The last frames' levels (and the agent's clicks), to vet a talk-over."""
        # [this call, lifetime] x [count, frames, by agent, by customer, frames by agent,
        # frames by customer]
        self._talkover_counts = [[0] * 6, [0] * 6]
        self._silence: Condition | None = None
        self._silence_start = 0
        self._echo_cond: Condition | None = None
        self._mic_dead_cond: Condition | None = None
        self._mic_dead_far = 0
        self._seg_dead_frames = 0
        self._seg_alive = False
        self._seg_far_speech = 0
        self._configure()
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

    def push(
        self, agent: np.ndarray | None = None, customer: np.ndarray | None = None
    ) -> list[Event]:
        """Add samples of either or both streams; process every frame both streams have."""
        if self._finished:
            raise RuntimeError("push() after finish(): start a new Pipeline")
        for party, x in ((self._agent, agent), (self._customer, customer)):
            if x is not None and len(x):
                party.framer.push(party.resampler.process(_sanitize(np.asarray(x).ravel())))
        return self._run()

    def finish(self) -> list[Event]:
        """End of input: flush the resamplers, process what is left, close open conditions."""
        if self._finished:
            return []
        for party in (self._agent, self._customer):
            party.framer.push(party.resampler.flush())
        events = self._run(final=True)
        events.extend(self.end_call())
        self._finished = True
        return events

    def start_call(self) -> None:
        """Reset the per-call statistics; adaptive state (noise floors, echo) carries on."""
        self._call_start_frame = self._frame
        self._any_speech = False
        for party in (self._agent, self._customer):
            party.audio_frames[0] = party.speech_frames[0] = party.clipped[0] = 0
            party.meter.reset()
            party.noise.start_call()
        self._talkover_counts[0] = [0] * 6

    def end_call(self) -> list[Event]:
        """Close every open condition at the current position (call over or input ended)."""
        i = self._frame
        out: list[Event] = []
        change = self._talkover.close(self._agent.spurts, self._customer.spurts)
        if change is not None:
            out.append(self._talkover_event(change))
        for party in (self._agent, self._customer):
            for cond, kind in (
                (party.noise_cond, Kind.NOISE),
                (party.quiet_cond, Kind.TOO_QUIET),
                (party.loud_cond, Kind.TOO_LOUD),
                (party.clip_cond, Kind.CLIPPING),
            ):
                if cond.close(i):
                    out.append(self._event(kind, Phase.END, party.stream, cond.start, cond.end,
                                           **self._condition_data(party, kind)))
        if self._silence.close(i):
            out.append(self._event(Kind.SILENCE, Phase.END, None, self._silence_start, i,
                                   duration_s=(i - self._silence_start) * FRAME_S,
                                   threshold_s=self._s.silence_min_s))
        if self._echo_cond.close(i):
            out.append(self._echo_event(Phase.END, self._echo_cond.start, self._echo_cond.end))
        if self._mic_dead_cond.close(i):
            out.append(self._event(Kind.MIC_DEAD, Phase.END, Stream.AGENT,
                                   self._mic_dead_cond.start, self._mic_dead_cond.end,
                                   threshold_dbfs=self._s.mic_dead_dbfs))
        return out

    def update_settings(self, settings: DetectorSettings) -> None:
        """Apply new thresholds (SIGHUP) without losing any state or audio."""
        self._s = settings
        self._agent.configure(settings)
        self._customer.configure(settings)
        self._talkover.min_frames = _frames(settings.min_overlap_s)
        self._configure()

    @property
    def stats(self) -> CallStats:
        """Statistics since the last :meth:`start_call` (or since creation)."""
        return self._snapshot(0)

    @property
    def totals(self) -> CallStats:
        """Statistics since creation: monotonic, for counters."""
        return self._snapshot(1)

    # -- internals --------------------------------------------------------------------------

    def _configure(self) -> None:
        s = self._s
        hang = _frames(s.vad_hangover_s)
        self._silence = _carry(self._silence, max(1, _frames(s.silence_min_s) - hang), 1)
        self._echo_cond = _carry(self._echo_cond, _segments(s.echo_min_s),
                                 _segments(s.resolve_s))
        self._mic_dead_cond = _carry(self._mic_dead_cond, _segments(s.mic_dead_min_s), 1)

    def _snapshot(self, span: int) -> CallStats:
        count, frames, by_agent, by_customer, f_agent, f_customer = self._talkover_counts[span]
        duration = (self._frame - (self._call_start_frame if span == 0 else 0)) * FRAME_S
        return CallStats(
            agent=self._agent.snapshot(span),
            customer=self._customer.snapshot(span),
            talk_over=TalkOverStats(count, frames * FRAME_S, by_agent, by_customer,
                                    f_agent * FRAME_S, f_customer * FRAME_S),
            duration_s=duration,
        )

    @staticmethod
    def _event(
        kind: Kind,
        phase: Phase,
        stream: Stream | None,
        start_frame: int,
        end_frame: int,
        **data: str | int | float,
    ) -> Event:
        return Event(kind, phase, stream, start_frame * FRAME_LEN, end_frame * FRAME_LEN, data)

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
                    party.noise.seed(frame_features(first, self._s.clip_level).rms_dbfs)
                self._primed = True
            n = min(n, BLOCK_FRAMES)
            self._process_block(self._agent.framer.pop(n), self._customer.framer.pop(n), events)

    def _process_block(self, a: np.ndarray, c: np.ndarray, events: list[Event]) -> None:
        """Compute what depends only on the samples for the whole block at once (features,
        PCM for the VAD, clicks, far-end delay lines), then step through it segment by
        segment, since segment ends change the state the gates use."""
        clip = self._s.clip_level
        fa, fc = frame_features(a, clip), frame_features(c, clip)
        blk = _Block(fa, fc, to_pcm16(a), to_pcm16(c), _impulsive(fa, a), _impulsive(fc, c))
        lags = self._max_lag + 1
        far_hist = np.concatenate((self._far_tail, fc.rms_dbfs))
        self._far_tail = far_hist[-lags:]
        blk.far_lagged = far_hist[lags + np.arange(len(a))[:, None] - np.arange(lags)[None, :]]
        start = 0
        while start < len(a):
            end = min(len(a), start + SEGMENT_FRAMES - self._frame % SEGMENT_FRAMES)
            self._process(a[start:end], c[start:end], blk.slice(start, end), events)
            start = end
        for party in (self._agent, self._customer):
            if party.meter_pending:
                party.meter.process(np.concatenate(party.meter_pending))
                party.meter_pending.clear()

    def _gate(
        self, party: _Party, feats: FrameFeatures, pcm16: np.ndarray, clicks: np.ndarray,
        floor_extra: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Speech decision per frame (stands out of the noise and leak, then webrtcvad), and
        which speech frames are strong enough to start a spurt."""
        s = self._s
        db = feats.rms_dbfs
        floor = party.floor.floors(db)
        threshold = floor + s.speech_margin_db
        np.maximum(threshold, s.min_speech_dbfs, out=threshold)
        noise = party.noise.live_dbfs
        background = floor if noise is None else np.maximum(floor, noise)
        margin = NOISE_LEVEL_MARGIN_DB
        if noise is not None:
            np.maximum(threshold, noise + margin, out=threshold)
        if floor_extra is not None:
            np.maximum(threshold, floor_extra, out=threshold)
        speech = db >= threshold
        speech &= ~clicks
        party.vad.classify(pcm16, speech)
        strong = db >= np.maximum(threshold, background + margin + SPURT_PEAK_MARGIN_DB)
        return speech, strong

    def _process(self, a: np.ndarray, c: np.ndarray, blk: _Block, events: list[Event]) -> None:
        """Frames that all lie inside one segment."""
        s = self._s
        n = len(a)
        i0 = self._frame
        agent, cust = self._agent, self._customer
        fa, fc = blk.fa, blk.fc
        lags = self._max_lag + 1
        far_lagged = blk.far_lagged  # (n, lags): the far end's level at every delay

        c_speech, c_strong = self._gate(cust, fc, blk.pc, blk.c_clicks, None)
        echo_floor = None
        echo = self._echo
        if echo.present:
            d = echo.delay_frames
            near = far_lagged[:, max(0, d - 1) : min(lags, d + 2)].max(axis=1)
            echo_floor = near + (echo.coupling_db + ECHO_MARGIN_DB)
        a_speech, a_strong = self._gate(agent, fa, blk.pa, blk.a_clicks, echo_floor)

        hist = self._hist_pos(i0, n)
        self._a_hist[hist] = fa.rms_dbfs
        self._c_hist[hist] = fc.rms_dbfs
        self._click_hist[hist] = blk.a_clicks

        # Per frame: spurts, talk-over, dead air.
        a_sp, c_sp = agent.spurts, cust.spurts
        a_act = np.zeros(n, dtype=bool)
        c_act = np.zeros(n, dtype=bool)
        talkover = self._talkover
        silence = self._silence
        a_list, c_list = a_speech.tolist(), c_speech.tolist()
        a_str, c_str = a_strong.tolist(), c_strong.tolist()
        for k in range(n):
            i = i0 + k
            ac = a_sp.step(i, a_list[k], a_str[k])
            cc = c_sp.step(i, c_list[k], c_str[k])
            a_on, c_on = a_sp.active, c_sp.active
            a_act[k] = a_on
            c_act[k] = c_on
            if (a_on and c_on) or talkover.in_overlap:
                change = talkover.step(i, a_sp, c_sp, a_list[k], c_list[k])
                if change is not None:
                    if change.begin and (i < WARMUP_FRAMES
                                         or self._not_a_voice(change.start, i + 1)):
                        talkover.veto()
                    else:
                        events.append(self._talkover_event(change))
            if a_on or c_on:
                self._any_speech = True
                if not (silence.active or silence.bad_run):
                    continue  # someone talks and no dead air is pending: nothing to update
            if self._any_speech:
                self._step_silence(i, ac, cc, events)

        # Counters and what the segment gathers.
        echo_explained = c_act & (echo_floor is not None)
        for party, frames, speech, act, feats, explained in (
            (agent, a, a_speech, a_act, fa, echo_explained),
            (cust, c, c_speech, c_act, fc, None),
        ):
            party.audio_frames[0] += n
            party.audio_frames[1] += n
            nspeech = int(speech.sum())
            party.speech_frames[0] += nspeech
            party.speech_frames[1] += nspeech
            clipped = int(feats.clipped.sum())
            party.clipped[0] += clipped
            party.clipped[1] += clipped
            party.seg_clipped += clipped
            if act.any():
                party.meter_pending.append(frames[act, ::P56_DECIMATION].ravel())
            if nspeech:
                party.seg_speech.append(feats.energy[speech])
            quiet = ~(speech | act)
            if explained is not None:
                quiet &= ~explained
            nquiet = int(quiet.sum())
            if nquiet:
                if not party.seg_quiet:
                    party.seg_quiet_first = i0 + int(np.argmax(quiet))
                party.seg_quiet += nquiet
                party.seg_quiet_levels.append(feats.rms_dbfs[quiet])
            party.seg_levels.append(feats.rms_dbfs)
            party.last_rms = float(feats.rms_dbfs[-1])
            party.last_peak = float(feats.peak_dbfs[-1])

        dead = fa.rms_dbfs < s.mic_dead_dbfs
        self._seg_dead_frames += int(dead.sum())
        self._seg_alive |= bool((fa.rms_dbfs >= s.mic_dead_dbfs + LEVEL_HYSTERESIS_DB).any())
        self._seg_far_speech += int(c_act.sum())
        if c_speech.any():
            echo.add(fa.rms_dbfs[c_speech], far_lagged[c_speech])

        self._frame += n
        if self._frame % SEGMENT_FRAMES == 0:
            self._end_segment(events)

    def _hist_pos(self, first: int, n: int) -> np.ndarray:
        return (first + np.arange(n)) % HISTORY_FRAMES

    def _not_a_voice(self, start: int, end: int) -> bool:
        """Whether the agent's side of an overlap about to be reported is not a voice: the
        far end leaking into the mic (its level follows the customer's, frame by frame, at
        some delay, even before the echo estimator has locked on), or mostly keystrokes."""
        start = max(start, end - HISTORY_FRAMES + self._max_lag + 1)
        n = end - start
        if n < 10:
            return False
        pos = self._hist_pos(start, n)
        if self._click_hist[pos].mean() >= VETO_CLICK_FRACTION:
            return True
        a = self._a_hist[pos] - self._a_hist[pos].mean()
        for lag in range(self._max_lag + 1):
            c = self._c_hist[(pos - lag) % HISTORY_FRAMES]
            c = c - c.mean()
            denom = math.sqrt(float(a @ a) * float(c @ c))
            if denom > 0 and float(a @ c) / denom >= VETO_LEAK_CORRELATION:
                return True
        return False

    def _step_silence(self, i: int, a_change: int, c_change: int, events: list[Event]) -> None:
        a, c = self._agent.spurts, self._customer.spurts
        quiet = not a.active and not c.active
        r = self._silence.update(i, quiet, not quiet)
        if r == BEGIN:
            self._silence_start = max(a.spurt_end, c.spurt_end, self._call_start_frame)
            events.append(self._event(Kind.SILENCE, Phase.BEGIN, None, self._silence_start, i + 1,
                                      threshold_s=self._s.silence_min_s))
        elif r == END:
            started = [p.spurt_start for p, ch in ((a, a_change), (c, c_change)) if ch == 1]
            end = min(started) if started else i
            events.append(self._event(Kind.SILENCE, Phase.END, None, self._silence_start, end,
                                      duration_s=(end - self._silence_start) * FRAME_S,
                                      threshold_s=self._s.silence_min_s))

    # -- once per segment -------------------------------------------------------------------

    def _end_segment(self, events: list[Event]) -> None:
        end = self._frame
        seg_start = end - SEGMENT_FRAMES
        for party in (self._agent, self._customer):
            party.noise.add_segment(np.concatenate(party.seg_levels))
            if party.seg_quiet * 2 >= SEGMENT_FRAMES:
                # Noise is judged, as headset vendors do, while the party is silent: in
                # segments that are mostly silence, by the median silent frame (robust to the
                # odd word onset or click that slips past the spurt state, which would
                # dominate a power mean). A "silence" far above the quietest frames was
                # speech the gates missed, not noise.
                quiet_db = _median(np.concatenate(party.seg_quiet_levels))
                above = quiet_db - party.floor.floor_dbfs
                if above <= FLOOR_STAT_ABOVE_MIN_MAX_DB:
                    party.noise.add_quiet(10.0 ** (quiet_db / 10.0))
                if above <= QUIET_ABOVE_FLOOR_MAX_DB:
                    self._judge_noise(party, party.seg_quiet_first, party.seg_quiet, quiet_db,
                                      events)
            party.floor.end_segment()
            party.seg_levels.clear()
            if party.seg_speech:
                party.add_speech_energy(np.concatenate(party.seg_speech))
                if party.stream is Stream.AGENT:
                    self._judge_levels(party, end, events)
            self._judge_clipping(party, seg_start, end, events)
            party.seg_speech.clear()
            party.seg_quiet = 0
            party.seg_quiet_levels.clear()
            party.seg_clipped = 0
        self._judge_mic_dead(seg_start, end, events)
        if self._echo.refresh():
            self._judge_echo(seg_start, end, events)

    def _judge_levels(self, party: _Party, end: int, events: list[Event]) -> None:
        s = self._s
        level = party.level_dbfs()
        if level is None:
            return
        for cond, kind, bad, good, threshold in (
            (party.quiet_cond, Kind.TOO_QUIET, level < s.too_quiet_dbfs,
             level >= s.too_quiet_dbfs + LEVEL_HYSTERESIS_DB, s.too_quiet_dbfs),
            (party.loud_cond, Kind.TOO_LOUD, level > s.too_loud_dbfs,
             level <= s.too_loud_dbfs - LEVEL_HYSTERESIS_DB, s.too_loud_dbfs),
        ):
            r = cond.update_many(end, SEGMENT_FRAMES, bad, good)
            if r == BEGIN:
                cond.start = max(end - round(s.level_window_s / FRAME_S), self._call_start_frame)
                events.append(self._event(kind, Phase.BEGIN, party.stream, cond.start, end,
                                          level_dbfs=level, threshold_dbfs=threshold))
            elif r == END:
                events.append(self._event(kind, Phase.END, party.stream, cond.start, cond.end,
                                          **self._condition_data(party, kind)))

    def _judge_noise(self, party: _Party, first: int, n: int, noise: float,
                     events: list[Event]) -> None:
        s = self._s
        party.noise_now = noise
        level = party.level_dbfs()
        snr = level - noise if level is not None else None
        bad = noise > s.noise_floor_dbfs or (snr is not None and snr < s.min_snr_db)
        good = noise <= s.noise_floor_dbfs - LEVEL_HYSTERESIS_DB and (
            snr is None or snr >= s.min_snr_db + LEVEL_HYSTERESIS_DB
        )
        cond = party.noise_cond
        if bad:
            party.noise_worst = max(party.noise_worst, noise) if cond.active else noise
        r = cond.update_many(first, n, bad, good)
        if r == NOTHING:
            return
        data = self._condition_data(party, Kind.NOISE)
        if r == BEGIN:
            events.append(self._event(Kind.NOISE, Phase.BEGIN, party.stream, cond.start,
                                      self._frame, **data))
        else:
            events.append(self._event(Kind.NOISE, Phase.END, party.stream, cond.start, cond.end,
                                      **data))

    def _judge_clipping(self, party: _Party, seg_start: int, end: int,
                        events: list[Event]) -> None:
        s = self._s
        ratio = party.seg_clipped / (SEGMENT_FRAMES * FRAME_LEN)
        cond = party.clip_cond
        r = cond.update(seg_start, ratio > s.clipping_min_ratio, party.seg_clipped == 0)
        if r == BEGIN:
            events.append(self._event(Kind.CLIPPING, Phase.BEGIN, party.stream, seg_start, end,
                                      clipped_ratio=ratio, threshold_ratio=s.clipping_min_ratio))
        elif r == END:
            events.append(self._event(Kind.CLIPPING, Phase.END, party.stream, cond.start,
                                      cond.end, **self._condition_data(party, Kind.CLIPPING)))

    def _judge_mic_dead(self, seg_start: int, end: int, events: list[Event]) -> None:
        s = self._s
        cond = self._mic_dead_cond
        dead = self._seg_dead_frames == SEGMENT_FRAMES
        if dead:
            if cond.bad_run == 0:
                self._mic_dead_far = 0
            self._mic_dead_far += self._seg_far_speech
        was_active = cond.active
        r = cond.update(seg_start, dead, self._seg_alive)
        if r == BEGIN and self._mic_dead_far < _frames(MIC_DEAD_FAR_SPEECH_S):
            cond.active = False  # dead, but the far end has not talked through it yet
            r = NOTHING
        if r == BEGIN:
            events.append(self._event(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT, cond.start, end,
                                      threshold_dbfs=s.mic_dead_dbfs,
                                      far_speech_s=self._mic_dead_far * FRAME_S))
        elif r == END and was_active:
            events.append(self._event(Kind.MIC_DEAD, Phase.END, Stream.AGENT, cond.start,
                                      cond.end, threshold_dbfs=s.mic_dead_dbfs))
        self._seg_dead_frames = 0
        self._seg_alive = False
        self._seg_far_speech = 0

    def _judge_echo(self, seg_start: int, end: int, events: list[Event]) -> None:
        echo = self._echo
        bad = echo.present and echo.coupling_db > self._s.echo_max_coupling_db
        cond = self._echo_cond
        r = cond.update(seg_start, bad, not bad)
        if r == BEGIN:
            events.append(self._echo_event(Phase.BEGIN, cond.start, end))
        elif r == END:
            events.append(self._echo_event(Phase.END, cond.start, cond.end))

    # -- event payloads ---------------------------------------------------------------------

    def _condition_data(self, party: _Party, kind: Kind) -> dict[str, str | int | float]:
        """Measurements and thresholds of a party's condition, for its events."""
        s = self._s
        if kind is Kind.NOISE:
            data: dict[str, str | int | float] = {
                "noise_floor_dbfs": party.noise_worst,
                "threshold_dbfs": s.noise_floor_dbfs,
                "min_snr_db": s.min_snr_db,
            }
            level, noise = party.level_dbfs(), party.noise_now
            if level is not None and noise is not None:
                data["snr_db"] = level - noise
            return data
        if kind is Kind.CLIPPING:
            return {"threshold_ratio": s.clipping_min_ratio}
        threshold = s.too_quiet_dbfs if kind is Kind.TOO_QUIET else s.too_loud_dbfs
        level = party.level_dbfs()
        data = {"threshold_dbfs": threshold}
        if level is not None:
            data["level_dbfs"] = level
        return data

    def _echo_event(self, phase: Phase, start: int, end: int) -> Event:
        echo = self._echo
        coupling = echo.coupling_db if math.isfinite(echo.coupling_db) else DBFS_FLOOR
        return self._event(Kind.ECHO, phase, Stream.AGENT, start, end,
                           coupling_db=coupling, erl_db=-coupling, delay_ms=echo.delay_ms,
                           threshold_db=self._s.echo_max_coupling_db)

    def _talkover_event(self, change: OverlapChange) -> Event:
        if change.begin:
            for span in (0, 1):
                counts = self._talkover_counts[span]
                counts[0] += 1
                counts[2 if change.initiator is Stream.AGENT else 3] += 1
            return self._event(Kind.TALK_OVER, Phase.BEGIN, None, change.start, change.end,
                               initiator=change.initiator.value)
        by = 4 if change.initiator is Stream.AGENT else 5
        for span in (0, 1):
            self._talkover_counts[span][1] += change.end - change.start
            self._talkover_counts[span][by] += change.end - change.start
        return self._event(Kind.TALK_OVER, Phase.END, None, change.start, change.end,
                           initiator=change.initiator.value,
                           duration_s=(change.end - change.start) * FRAME_S)
