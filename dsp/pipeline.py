"""The detection pipeline: both sides of a call in, typed events out.

One pipeline serves live capture, live replay and file analysis. Each stream is converted to
float, resampled to :data:`dsp.ANALYSIS_RATE` and cut into fixed 20 ms frames; frames are only
processed when both streams have them, and every periodic update is keyed to the frame index,
so the events are the same however the audio was chunked.

Per frame, for each party:

1. features (level, peak, clipped samples) are computed for a whole block at once with numpy;
2. a frame is *speech* only if webrtcvad says so **and** it stands out of that party's noise
   (its minimum floor and its noise level, by ``speech_margin_db``) **and**, for the agent,
   out of the far-end leak the echo estimator predicts. WebRTC's VAD alone marks most babble,
   traffic and speaker leak as speech; these gates are what keep a noisy room or laptop
   speakers from producing false talk-overs. The VAD is not even asked about frames that
   fail the energy gates, which also makes the pipeline fast;
3. talk spurts (onset and hangover), noise, levels, clipping, dead air, dead mic and echo are
   tracked by small state machines that emit BEGIN/END events.
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
from dsp.levels import DBFS_FLOOR, ActiveLevelMeter, frame_features, to_float32
from dsp.noise import MinimumFloor, NoiseLevel, power_dbfs
from dsp.resample import Resampler
from dsp.settings import DetectorSettings
from dsp.stats import CallStats, StreamStats, TalkOverStats
from dsp.talkover import OverlapChange, TalkOverDetector
from dsp.vad import WebRtcVad, to_pcm16

BLOCK_FRAMES = 250
"""Frames processed per inner block (5 s): bounds memory and the time between GIL releases."""

NOISE_LEVEL_MARGIN_DB = 6.0
"""Speech must also stand this far above the party's (mean) noise level, not only its minimum."""

ECHO_MARGIN_DB = 9.0
"""Agent speech must stand this far above the far-end leak the echo estimator predicts."""

LEVEL_HYSTERESIS_DB = 2.0
"""A level or noise condition resolves only this far back inside its threshold."""

CLIP_WINDOW_FRAMES = 50
"""Clipping is judged over the last second."""

MIC_DEAD_FAR_SPEECH_S = 3.0
"""A dead mic is reported only once the far end has talked this long during it."""


def _sanitize(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] whatever arrived: NaN and infinities from a broken driver or
    file must never reach the detectors (they would poison every running mean)."""
    y = to_float32(x)
    if not np.isfinite(y).all():
        y = np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(y, -1.0, 1.0, dtype=np.float32)


def _frames(seconds: float) -> int:
    return max(1, round(seconds / FRAME_S))


class _Party:
    """Per-stream state: VAD, spurts, noise, level window, clipping and the counters."""

    def __init__(self, stream: Stream, rate: int, settings: DetectorSettings) -> None:
        self.stream = stream
        self.resampler = Resampler(rate, ANALYSIS_RATE)
        self.framer = Reframer(FRAME_LEN)
        self.vad = WebRtcVad(settings.vad_mode)
        self.floor = MinimumFloor()
        self.noise = NoiseLevel()
        self.meter = ActiveLevelMeter(ANALYSIS_RATE)
        self.level_energy = np.zeros(1)
        self.level_pos = 0
        self.level_count = 0
        self.level_sum = 0.0
        self.clip_hist = np.zeros(CLIP_WINDOW_FRAMES, dtype=np.int64)
        self.clip_sum = 0
        self.configure(settings)
        # Counters: [call, lifetime]
        self.audio_frames = [0, 0]
        self.speech_frames = [0, 0]
        self.clipped = [0, 0]
        self.last_rms = DBFS_FLOOR
        self.last_peak = DBFS_FLOOR
        self.noise_worst = DBFS_FLOOR

    def configure(self, s: DetectorSettings) -> None:
        old = getattr(self, "spurts", None)
        self.spurts = TalkSpurts(_frames(s.vad_start_s), _frames(s.vad_hangover_s))
        if old is not None:
            for name in ("active", "run", "spurt_start", "last_speech"):
                setattr(self.spurts, name, getattr(old, name))
        self.vad.set_mode(s.vad_mode)
        window = _frames(s.level_window_s)
        if window != self.level_energy.size:
            self.level_energy = np.zeros(window)
            self.level_pos = self.level_count = 0
            self.level_sum = 0.0
        self.noise_cond = _carry(getattr(self, "noise_cond", None), _frames(s.noise_min_s),
                                 _frames(s.resolve_s))
        self.quiet_cond = _carry(getattr(self, "quiet_cond", None), 1, _frames(s.resolve_s))
        self.loud_cond = _carry(getattr(self, "loud_cond", None), 1, _frames(s.resolve_s))
        self.clip_cond = _carry(getattr(self, "clip_cond", None), 1, _frames(s.resolve_s))

    def level_dbfs(self) -> float | None:
        """Power mean of the last ``level_window_s`` of speech frames, once the window is full."""
        if self.level_count < self.level_energy.size:
            return None
        return power_dbfs(self.level_sum / self.level_energy.size)

    def add_speech_energy(self, energy: float) -> None:
        k = self.level_pos
        self.level_sum += energy - self.level_energy[k]
        self.level_energy[k] = energy
        self.level_pos = (k + 1) % self.level_energy.size
        self.level_count += 1

    def snapshot(self, span: int) -> StreamStats:
        audio = self.audio_frames[span]
        level = self.meter.level_dbfs
        noise = self.noise.call_dbfs
        snr = level - noise if level is not None and noise is not None else None
        samples = audio * FRAME_LEN
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


def _carry(old: Condition | None, on: int, off: int) -> Condition:
    """A condition with new durations that keeps the state of the one it replaces."""
    new = Condition(on, off)
    if old is not None:
        for name in ("active", "bad_run", "good_run", "start", "end"):
            setattr(new, name, getattr(old, name))
    return new


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
        max_lag = _frames(self._s.echo_max_delay_ms / 1000.0)
        self._echo = EchoEstimator(max_lag)
        self._far_db = np.full(max_lag + 2, DBFS_FLOOR)
        self._talkover = TalkOverDetector(_frames(self._s.min_overlap_s))
        self._talkover_counts = [[0, 0, 0, 0], [0, 0, 0, 0]]  # [count, frames, agent, customer]
        self._configure()
        self._mic_dead_run = 0
        self._mic_dead_far = 0
        self._mic_dead_start = 0
        self._mic_dead_active = False
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
        events = self._run()
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
        self._talkover_counts[0] = [0, 0, 0, 0]

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
                                   duration_s=(i - self._silence_start) * FRAME_S))
        if self._echo_cond.close(i):
            out.append(self._echo_event(Phase.END, self._echo_cond.start, self._echo_cond.end))
        if self._mic_dead_active:
            self._mic_dead_active = False
            out.append(self._event(Kind.MIC_DEAD, Phase.END, Stream.AGENT,
                                   self._mic_dead_start, i))
        self._mic_dead_run = 0
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
        old_sil = getattr(self, "_silence", None)
        hang = _frames(s.vad_hangover_s)
        self._silence = _carry(old_sil, max(1, _frames(s.silence_min_s) - hang), 1)
        if old_sil is None:
            self._silence_start = 0
        # The echo estimate refreshes every `update_frames`: its condition counts refreshes.
        per = self._echo.update_frames * FRAME_S
        self._echo_cond = _carry(getattr(self, "_echo_cond", None),
                                 max(1, round(s.echo_min_s / per)),
                                 max(1, round(s.resolve_s / per)))
        self._min_speech_dbfs = s.min_speech_dbfs
        self._margin_db = s.speech_margin_db

    def _snapshot(self, span: int) -> CallStats:
        count, frames, by_agent, by_customer = self._talkover_counts[span]
        duration = (self._frame - (self._call_start_frame if span == 0 else 0)) * FRAME_S
        return CallStats(
            agent=self._agent.snapshot(span),
            customer=self._customer.snapshot(span),
            talk_over=TalkOverStats(count, frames * FRAME_S, by_agent, by_customer),
            duration_s=duration,
        )

    def _event(
        self,
        kind: Kind,
        phase: Phase,
        stream: Stream | None,
        start_frame: int,
        end_frame: int,
        **data: str | int | float,
    ) -> Event:
        return Event(kind, phase, stream, start_frame * FRAME_LEN, end_frame * FRAME_LEN, data)

    def _run(self) -> list[Event]:
        events: list[Event] = []
        while True:
            n = min(self._agent.framer.frames_available, self._customer.framer.frames_available)
            if n == 0:
                return events
            n = min(n, BLOCK_FRAMES)
            self._process_block(
                self._agent.framer.pop(n), self._customer.framer.pop(n), events
            )

    def _process_block(self, a: np.ndarray, c: np.ndarray, events: list[Event]) -> None:
        s = self._s
        clip = s.clip_level
        fa = frame_features(a, clip)
        fc = frame_features(c, clip)
        pa, pc = to_pcm16(a), to_pcm16(c)
        agent, cust = self._agent, self._customer
        a_spurts, c_spurts = agent.spurts, cust.spurts
        echo = self._echo
        far_db_hist = self._far_db
        hist_len = far_db_hist.size
        min_speech = self._min_speech_dbfs
        margin = self._margin_db
        a_speech_mask = np.zeros(len(a), dtype=bool)
        c_speech_mask = np.zeros(len(c), dtype=bool)
        a_db_all, c_db_all = fa.rms_dbfs.tolist(), fc.rms_dbfs.tolist()
        a_en_all, c_en_all = fa.energy.tolist(), fc.energy.tolist()
        a_clip_all, c_clip_all = fa.clipped.tolist(), fc.clipped.tolist()
        base = self._frame
        for k in range(len(a)):
            i = base + k
            # Customer first: the agent's echo gate needs this frame's far-end level.
            c_db = c_db_all[k]
            c_speech = self._is_speech(cust, c_db, pc[k], min_speech, margin, -math.inf)
            c_change = c_spurts.step(i, c_speech)
            far_db_hist[i % hist_len] = c_db

            a_db = a_db_all[k]
            echo_db = -math.inf
            if echo.present:
                d = echo.delay_frames
                echo_db = max(
                    far_db_hist[(i - d) % hist_len],
                    far_db_hist[(i - d - 1) % hist_len],
                    far_db_hist[(i - d + 1) % hist_len] if d > 0 else -math.inf,
                ) + echo.coupling_db + ECHO_MARGIN_DB
            a_speech = self._is_speech(agent, a_db, pa[k], min_speech, margin, echo_db)
            a_change = a_spurts.step(i, a_speech)
            a_speech_mask[k] = a_spurts.active
            c_speech_mask[k] = c_spurts.active

            if echo.step(a_db, c_db, c_speech):
                self._update_echo_condition(i, events)

            change = self._talkover.step(i, a_spurts, c_spurts, a_speech, c_speech)
            if change is not None:
                events.append(self._talkover_event(change))

            self._step_party(agent, i, a_db, a_en_all[k], a_clip_all[k], a_speech,
                             echo_db > a_db - ECHO_MARGIN_DB and c_spurts.active, events)
            self._step_party(cust, i, c_db, c_en_all[k], c_clip_all[k], c_speech, False, events)
            self._step_silence(i, a_spurts, c_spurts, a_change, c_change, events)
            self._step_mic_dead(i, a_db, c_spurts.active, events)

        n = len(a)
        for party, frames, mask, feats in (
            (agent, a, a_speech_mask, fa),
            (cust, c, c_speech_mask, fc),
        ):
            party.audio_frames[0] += n
            party.audio_frames[1] += n
            clipped = int(feats.clipped.sum())
            party.clipped[0] += clipped
            party.clipped[1] += clipped
            if mask.any():
                party.meter.process(frames[mask].ravel())
            party.last_rms = float(feats.rms_dbfs[-1])
            party.last_peak = float(feats.peak_dbfs[-1])
        self._frame += n

    def _is_speech(
        self,
        party: _Party,
        db: float,
        pcm: np.ndarray,
        min_speech: float,
        margin: float,
        echo_db: float,
    ) -> bool:
        floor = party.floor.step(db)
        threshold = floor + margin
        if threshold < min_speech:
            threshold = min_speech
        noise = party.noise.live_dbfs
        if noise is not None and noise + NOISE_LEVEL_MARGIN_DB > threshold:
            threshold = noise + NOISE_LEVEL_MARGIN_DB
        if echo_db > threshold:
            threshold = echo_db
        if db < threshold:
            return False
        return party.vad.is_speech(pcm.tobytes())

    def _step_party(
        self,
        party: _Party,
        i: int,
        db: float,
        energy: float,
        clipped: int,
        speech: bool,
        echo_explained: bool,
        events: list[Event],
    ) -> None:
        s = self._s
        stream = party.stream
        if speech:
            party.speech_frames[0] += 1
            party.speech_frames[1] += 1
            party.add_speech_energy(energy)
            if stream is Stream.AGENT:
                self._step_levels(party, i, events)
        elif not party.spurts.active and not echo_explained:
            party.noise.step(energy)
            self._step_noise(party, i, events)

        # Clipping over the last second.
        k = i % CLIP_WINDOW_FRAMES
        party.clip_sum += clipped - int(party.clip_hist[k])
        party.clip_hist[k] = clipped
        ratio = party.clip_sum / (CLIP_WINDOW_FRAMES * FRAME_LEN)
        r = party.clip_cond.update(i, ratio > s.clipping_min_ratio, party.clip_sum == 0)
        if r == BEGIN:
            events.append(self._event(Kind.CLIPPING, Phase.BEGIN, stream, party.clip_cond.start,
                                      i + 1, clipped_ratio=ratio,
                                      threshold_ratio=s.clipping_min_ratio))
        elif r == END:
            events.append(self._event(Kind.CLIPPING, Phase.END, stream, party.clip_cond.start,
                                      party.clip_cond.end,
                                      **self._condition_data(party, Kind.CLIPPING)))

    def _condition_data(self, party: _Party, kind: Kind) -> dict[str, str | int | float]:
        """Measurements and thresholds of a party's condition, for its events."""
        s = self._s
        if kind is Kind.NOISE:
            data: dict[str, str | int | float] = {
                "noise_floor_dbfs": party.noise_worst,
                "threshold_dbfs": s.noise_floor_dbfs,
                "min_snr_db": s.min_snr_db,
            }
            level, noise = party.level_dbfs(), party.noise.live_dbfs
            if level is not None and noise is not None:
                data["snr_db"] = level - noise
            return data
        if kind is Kind.CLIPPING:
            return {"clipped_ratio": party.clip_sum / (CLIP_WINDOW_FRAMES * FRAME_LEN),
                    "threshold_ratio": s.clipping_min_ratio}
        threshold = s.too_quiet_dbfs if kind is Kind.TOO_QUIET else s.too_loud_dbfs
        level = party.level_dbfs()
        data = {"threshold_dbfs": threshold}
        if level is not None:
            data["level_dbfs"] = level
        return data

    def _step_levels(self, party: _Party, i: int, events: list[Event]) -> None:
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
            r = cond.update(i, bad, good)
            if r == BEGIN:
                start = max(i + 1 - round(s.level_window_s / FRAME_S), self._call_start_frame)
                cond.start = start
                events.append(self._event(kind, Phase.BEGIN, party.stream, start, i + 1,
                                          level_dbfs=level, threshold_dbfs=threshold))
            elif r == END:
                events.append(self._event(kind, Phase.END, party.stream, cond.start, cond.end,
                                          **self._condition_data(party, kind)))

    def _step_noise(self, party: _Party, i: int, events: list[Event]) -> None:
        s = self._s
        noise = party.noise.live_dbfs
        if noise is None:
            return
        level = party.level_dbfs()
        snr = level - noise if level is not None else None
        bad = noise > s.noise_floor_dbfs or (snr is not None and snr < s.min_snr_db)
        good = noise <= s.noise_floor_dbfs - LEVEL_HYSTERESIS_DB and (
            snr is None or snr >= s.min_snr_db + LEVEL_HYSTERESIS_DB
        )
        cond = party.noise_cond
        if cond.active or bad:
            party.noise_worst = max(party.noise_worst, noise) if cond.active else noise
        r = cond.update(i, bad, good)
        if r == NOTHING:
            return
        data = self._condition_data(party, Kind.NOISE)
        if r == BEGIN:
            events.append(self._event(Kind.NOISE, Phase.BEGIN, party.stream, cond.start, i + 1,
                                      **data))
        else:
            events.append(self._event(Kind.NOISE, Phase.END, party.stream, cond.start, cond.end,
                                      **data))

    def _step_silence(
        self,
        i: int,
        a: TalkSpurts,
        c: TalkSpurts,
        a_change: int,
        c_change: int,
        events: list[Event],
    ) -> None:
        if a.active or c.active:
            self._any_speech = True
        if not self._any_speech:
            return
        quiet = not a.active and not c.active
        r = self._silence.update(i, quiet, not quiet)
        if r == BEGIN:
            self._silence_start = max(a.last_speech, c.last_speech) + 1
            events.append(self._event(Kind.SILENCE, Phase.BEGIN, None, self._silence_start, i + 1,
                                      threshold_s=self._s.silence_min_s))
        elif r == END:
            started = [p.spurt_start for p, ch in ((a, a_change), (c, c_change)) if ch == 1]
            end = min(started) if started else i
            events.append(self._event(Kind.SILENCE, Phase.END, None, self._silence_start, end,
                                      duration_s=(end - self._silence_start) * FRAME_S,
                                      threshold_s=self._s.silence_min_s))

    def _step_mic_dead(self, i: int, a_db: float, far_active: bool, events: list[Event]) -> None:
        s = self._s
        if a_db < s.mic_dead_dbfs:
            if self._mic_dead_run == 0:
                self._mic_dead_start = i
                self._mic_dead_far = 0
            self._mic_dead_run += 1
            self._mic_dead_far += far_active
            if (
                not self._mic_dead_active
                and self._mic_dead_run >= _frames(s.mic_dead_min_s)
                and self._mic_dead_far >= _frames(MIC_DEAD_FAR_SPEECH_S)
            ):
                self._mic_dead_active = True
                events.append(self._event(Kind.MIC_DEAD, Phase.BEGIN, Stream.AGENT,
                                          self._mic_dead_start, i + 1, level_dbfs=a_db,
                                          threshold_dbfs=s.mic_dead_dbfs))
        elif a_db >= s.mic_dead_dbfs + LEVEL_HYSTERESIS_DB:
            self._mic_dead_run = 0
            if self._mic_dead_active:
                self._mic_dead_active = False
                events.append(self._event(Kind.MIC_DEAD, Phase.END, Stream.AGENT,
                                          self._mic_dead_start, i, level_dbfs=a_db,
                                          threshold_dbfs=s.mic_dead_dbfs))

    def _update_echo_condition(self, i: int, events: list[Event]) -> None:
        s = self._s
        echo = self._echo
        bad = echo.present and echo.coupling_db > s.echo_max_coupling_db
        cond = self._echo_cond
        r = cond.update(i, bad, not bad)
        if r == BEGIN:
            events.append(self._echo_event(Phase.BEGIN, cond.start, i + 1))
        elif r == END:
            events.append(self._echo_event(Phase.END, cond.start, cond.end))

    def _echo_event(self, phase: Phase, start: int, end: int) -> Event:
        echo = self._echo
        return self._event(Kind.ECHO, phase, Stream.AGENT, start, end,
                           coupling_db=echo.coupling_db, erl_db=-echo.coupling_db,
                           delay_ms=echo.delay_ms, threshold_db=self._s.echo_max_coupling_db)

    def _talkover_event(self, change: OverlapChange) -> Event:
        if change.begin:
            for span in (0, 1):
                counts = self._talkover_counts[span]
                counts[0] += 1
                counts[2 if change.initiator is Stream.AGENT else 3] += 1
            return self._event(Kind.TALK_OVER, Phase.BEGIN, None, change.start, change.end,
                               initiator=change.initiator.value)
        for span in (0, 1):
            self._talkover_counts[span][1] += change.end - change.start
        return self._event(Kind.TALK_OVER, Phase.END, None, change.start, change.end,
                           initiator=change.initiator.value,
                           duration_s=(change.end - change.start) * FRAME_S)
