"""One side of the call: the per-stream state every detector reads.

A :class:`Party` holds what both the frame loop and the segment step need about one stream:
its resampler and framer, its VAD, its noise estimates (minimum floor, background level), its
P.56 meter, its talk spurts, its counters and what the current segment has gathered. The
speech gate (:meth:`Party.gate`) lives here because it is the party's own decision, made from
the party's own noise estimates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S
from dsp.activity import TalkSpurts
from dsp.clicks import IMPULSE_CREST_DB
from dsp.events import Stream
from dsp.framing import Reframer
from dsp.hum import HumCanceller
from dsp.levels import DBFS_FLOOR, ActiveLevelMeter, FrameFeatures, power_dbfs
from dsp.noise import BackgroundLevel, MinimumFloor
from dsp.pace import SyllableCounter
from dsp.party_vad import EARLY_VAD_QUIET_DBFS, EARLY_VAD_QUIET_MIC_DBFS, PartyVads
from dsp.resample import Resampler
from dsp.settings import DetectorSettings
from dsp.speech_time import SpeechTime
from dsp.stats import StreamStats
from dsp.voice_drop import VoiceDrop

SEGMENT_FRAMES = 50
"""One second: the resolution of the noise, level, clipping, dead-mic and echo detectors."""

NOISE_LEVEL_MARGIN_DB = 8.0
STEADY_NOISE_MARGIN_DB = 5.0
NOISE_SPREAD_MARGIN_DB = 3.0
"""Speech must also stand this far above the party's typical background (see below): 8 dB,
as babble's louder moments reach 6-8 dB over its 30th percentile. Steadier noise (rain, a
fan, a quiet room) swings less, and a voice at 5-8 dB SNR in it has most of its frames
within 8 dB of it: there the margin is how far the background between the party's spurts
reaches over its 30th percentile (its 80th) plus 3 dB, at least 5 dB."""

LISTEN_MAX_SPREAD_DB = 3.0
LISTEN_MAX_SNR_DB = 12.0
LISTEN_MIN_MARGIN_DB = 1.5
LISTEN_VAD_GAIN_DB = 5.0
LISTEN_QUIET_ROOM_DBFS = -60.0
"""A steady background (a fan, an air conditioner, running water: its 80th percentile within
3 dB of its 30th) that the party's voice stands less than 12 dB above hides half their speech
frames inside the margins above: at 5 dB SNR the median speech frame is 3 dB over the
background. Such noise seldom reaches past its own 80th percentile, and a VAD tells a voice
from it, so there every frame above that percentile (at least 1.5 dB over the background)
goes to a VAD of its own, 5 dB louder than the party's VAD hears them (at low SNR only the
louder frames pass the gate, and the level they give sits about 5 dB over the voice's
active level). What it hears counts towards speech time near a spurt; of it, the frames that
pass the full gate also count as speech, so a spurt starts and carries on only where it
always could, and talk-overs keep their margins. The party's own VAD never hears the extra
frames (it adapts to what it is given: fed the background's edge as well, it judged the
frames over the gate more strictly, and a voice at 8 dB SNR in pink noise lost 30 % of its
speech time). Until the party's level is known, it listens only in a background over -60 dBFS
(raising the frames 5 dB): a quiet room hides no voice, and a VAD that has learnt one takes any
step in it (a recording's hiss before its first word, 9 dB over the room) for a voice.
"""

BACKGROUND_WINDOW_FRAMES = 200
"""The background level is the 30th percentile of the last 4 s of frame levels: low enough to
sit in the pauses of continuous speech, high enough that babble's dips do not pull it down to
the quiet-room floor (see :class:`dsp.noise.BackgroundLevel`)."""

BACKGROUND_PERCENTILE = 30.0

QUIET_MIN_FRAMES = 100
"""The background between spurts is trusted once it has seen 2 s of frames."""

EARLY_ABOVE_FLOOR_MAX_DB = 12.0
"""Until the quiet estimate is trusted, the estimate over all frames is held within this of
the minimum floor. A party who talks from the call's first second with few pauses puts the
30th percentile of all frames inside their own speech (in a quiet room, 20-30 dB above the
dips between their words); their softer syllables then fail the gate, a turn breaks into
scattered spurts and its soft resumptions look like new starts. Steady noise and babble sit
well within 12 dB of their own minimum, so the limit does not bind there."""

LONG_SPURT_FRAMES = 500
"""Talkers pause for breath every few seconds; a spurt that runs 10 s without a 0.3 s pause is
a noise holding it open, and the background then counts its frames too."""

START_BELOW_LEVEL_DB = 4.0
START_DECAY_DB_PER_S = 0.5
"""A talk spurt starts only on a frame within 4 dB of the party's own speech level (see
:meth:`Party.voice_dbfs`), a requirement that relaxes by 0.5 dB for every second since the party was
last heard. A voice close to the mic has syllables at its own level in every phrase;
background talkers (office babble) reach the mic 10 dB or more below it, yet stand well out
of a quiet room, so the background gate alone lets them start spurts that hold dead air off
and lower the party's measured level. The relaxation lets a party who really got quieter
(moved the mic away) be heard again within seconds."""

VOICE_MIN_FRAMES = 50
"""Speech frames the own-level reference needs (one second)."""

RESUME_BELOW_LEVEL_DB = 6.0
"""Inside a spurt, a run of speech after a pause carries it on only once a frame comes within
this of the party's level (decayed as above): the talker's next words do, a background
voice starting as they stop does not (see :meth:`dsp.activity.TalkSpurts.step`)."""

EDGE_MARGIN_DB = 3.0
EDGE_WITHIN_DB = 30.0
"""A spurt's soft edge (:mod:`dsp.speech_time`) stands this far above the background, and
above how high the background reaches between the party's spurts (its 80th percentile,
:data:`dsp.noise.UPPER_PERCENTILE`: babble's louder moments next to a spurt are not the
party's speech), and within this far of the party's own level (the accuracy definitions'
30 dB)."""

SPURT_PEAK_MARGIN_DB = 3.5
"""A talk spurt starts only once a frame of it stands this far above the speech threshold
(its syllable peaks); babble, which the VAD also flags, rarely gets there."""

SPEECH_TIME_MAX_CREST_DB = IMPULSE_CREST_DB
"""A frame whose peak stands this far over its RMS is not counted as speech time, even when
it passed the speech gate. The click gate (:func:`dsp.clicks.impulsive`) also asks that one
slice of the frame hold the energy, to spare a talk spurt the few speech frames with a high
crest; speech time can spare them (a lone frame inside speech is bridged by the 0.2 s gap
filling), and keystrokes in a talker's pauses, half of which pass the click gate, filled
those pauses (typing calls of the development set 5-20 % over, 2-10 % after, no other call
moved by 2 %)."""

P56_DECIMATION = 2
"""The P.56 meter runs on every other sample (8 kHz, the rate P.56 is usually applied at):
its envelope has a 30 ms time constant, so halving the rate leaves the level within a few
hundredths of a dB on speech while halving its cost, the largest in the pipeline."""


def frames(seconds: float) -> int:
    """A duration in whole frames (at least one)."""
    return max(1, round(seconds / FRAME_S))


def segments(seconds: float) -> int:
    """A duration in whole segments (at least one)."""
    return max(1, round(seconds / (SEGMENT_FRAMES * FRAME_S)))


class Gates(NamedTuple):
    """A party's speech gates over a run of frames (:meth:`Party.gate`)."""

    speech: np.ndarray
    strong: np.ndarray
    """Speech loud enough to start a spurt."""
    resume: np.ndarray
    """Speech loud enough to carry a spurt on after a pause."""
    audible: np.ndarray
    """Frames that count towards speech time near a spurt."""
    held: np.ndarray
    """Speech that stood out of the background enough to start a spurt, held back only by
    the party's own level."""


class Gathered:
    """The frames of the current segment a mask picked: how many, the first one's index, and
    their levels (what the segment's noise judgment reads, :mod:`dsp.detectors.segment`)."""

    __slots__ = ("count", "first", "levels")

    def __init__(self) -> None:
        self.count = 0
        self.first = -1
        self.levels: list[np.ndarray] = []

    def add(self, mask: np.ndarray, i0: int, rms_dbfs: np.ndarray) -> None:
        """Frames ``i0 ..`` where ``mask`` is True, with their levels."""
        n = int(np.count_nonzero(mask))
        if n:
            if not self.count:
                self.first = i0 + int(np.argmax(mask))
            self.count += n
            self.levels.append(rms_dbfs[mask])

    def clear(self) -> None:
        self.count = 0
        self.levels.clear()


class Party:
    """Per-stream state: resampler, framer, VAD, spurts, noise, level window, counters, and
    what the current segment has gathered so far."""

    def __init__(self, stream: Stream, rate: int, settings: DetectorSettings) -> None:
        self.stream = stream
        self.resampler = Resampler(rate, ANALYSIS_RATE)
        self.framer = Reframer(FRAME_LEN)
        self.hum: HumCanceller | None = None
        """Mains hum removal on the agent's mic (see :mod:`dsp.hum`); the far end comes over
        a digital line and is what the agent hears, so it is analysed as it is."""
        self.samples_in = 0
        """Samples at the analysis rate handed to the framer so far."""
        self.rate = rate
        self.taken = 0
        """Samples at the stream's own rate taken so far (see :meth:`take`)."""
        self.vads = PartyVads(settings, EARLY_VAD_QUIET_MIC_DBFS if stream is Stream.AGENT
                              else EARLY_VAD_QUIET_DBFS)
        """The VADs that judge this party's frames (see :mod:`dsp.party_vad`)."""
        self.floor = MinimumFloor()
        self.noise = BackgroundLevel(BACKGROUND_WINDOW_FRAMES, BACKGROUND_PERCENTILE)
        """Background from the frames outside the party's talk spurts: the room between turns."""
        self.noise_all = BackgroundLevel(BACKGROUND_WINDOW_FRAMES, BACKGROUND_PERCENTILE)
        """Background from every frame, the fallback once a spurt runs on too long."""
        self.meter = ActiveLevelMeter(ANALYSIS_RATE // P56_DECIMATION)
        self.last_speech_at_segment = -(10**9)
        """The spurts' last speech frame as the current segment began: how long the party has
        been quiet is judged once a segment, so that the start and resume levels, which relax
        with it, are the same for every frame of the segment however the audio is chunked
        (read at each block's start, they moved with the block size)."""
        self.spurt_start_at_segment: int | None = None
        """First frame of the spurt running as the current segment began (None if none): the
        long-spurt fallback of :meth:`background_dbfs` is judged on it, for the same reason."""
        self.level_energy = np.zeros(0)
        self.level_pos = 0
        self.level_count = 0
        self._energy_mean: float | None = None
        """Mean of the level window's filled part (None while empty): it changes only when
        :meth:`add_speech_energy` adds frames, once a segment, but the gates read it every
        pass, so it is computed there once."""
        self.spurts = TalkSpurts(frames(settings.vad_start_s), frames(settings.vad_hangover_s))
        self.speech_time = SpeechTime()
        """Speech time as the accuracy definitions count it, near the spurts."""
        self.pace = SyllableCounter()
        """Syllable nuclei of the party's spurts: the speaking rate."""
        self.voice_drop = VoiceDrop()
        """Whether the party's voice dropped under the level the gates hold them to."""
        self.configure(settings)
        # Counters, [this call, lifetime].
        self.audio_frames = [0, 0]
        self.speech_frames = [0, 0]
        """Speech activity, [this call, lifetime]: the spurts' activity counts, copied."""
        self.clipped = [0, 0]
        self.last_rms = DBFS_FLOOR
        self.last_peak = DBFS_FLOOR
        # The current segment's gatherings.
        self.seg_quiet = Gathered()
        """Frames of the segment the party was silent in: no speech, spurt or leak."""
        self.seg_idle = Gathered()
        """Frames of the segment outside the party's spurts (and any leak), speech-like or not."""
        self.seg_speech: list[np.ndarray] = []
        self.seg_clipped = 0
        self.seg_levels: list[np.ndarray] = []

    def configure(self, s: DetectorSettings) -> None:
        """Apply thresholds; the spurt state and the level window's content carry over (the
        window restarts only when its length changes)."""
        self.speech_margin_db = s.speech_margin_db
        self.min_speech_dbfs = s.min_speech_dbfs
        self.spurts.start_frames = frames(s.vad_start_s)
        self.spurts.hangover_frames = frames(s.vad_hangover_s)
        self.vads.configure(s)  # a new engine starts from scratch; the spurts carry over
        if not (s.remove_hum and self.stream is Stream.AGENT):
            self.hum = None
        elif self.hum is None:
            self.hum = HumCanceller(self.samples_in)
        window = frames(s.level_window_s)
        if window != self.level_energy.size:
            self.level_energy = np.zeros(window)
            self.level_pos = self.level_count = 0
            self._energy_mean = None

    def take(self, x: np.ndarray) -> None:
        """Samples at the stream's own rate, into the framer (resampled, hum taken out)."""
        self.taken += x.size
        self._frame_up(self.resampler.process(x))

    def flush(self) -> None:
        """End of input: what the resampler still holds, into the framer."""
        self._frame_up(self.resampler.flush())

    def _frame_up(self, y: np.ndarray) -> None:
        self.samples_in += y.size
        self.framer.push(y if self.hum is None else self.hum.process(y))

    def hum_power(self, sample: int) -> float:
        """Mean-square mains hum taken out of the stream at ``sample`` (0 for none)."""
        return 0.0 if self.hum is None else self.hum.power_at(sample)

    def background_dbfs(self, frame: int) -> float | None:
        """The background speech must stand out of at ``frame``.

        Measured on the frames outside the party's spurts, because a low percentile of *all*
        frames sits inside the party's own speech when they talk with few pauses (a quiet
        talker's softer syllables then fail the gate, and a turn looks like scattered
        spurts). Until that has seen :data:`QUIET_MIN_FRAMES` (then held within
        :data:`EARLY_ABOVE_FLOOR_MAX_DB` of the minimum floor), and once a spurt runs on
        past :data:`LONG_SPURT_FRAMES` at the segment's start (babble loud enough to start a
        spurt never shows outside one), the estimate over all frames is used.
        """
        quiet, every = self.noise.live_dbfs, self.noise_all.live_dbfs
        if quiet is None or self.noise.frames < QUIET_MIN_FRAMES:
            if every is None:
                return None
            return min(every, self.floor.settled_dbfs + EARLY_ABOVE_FLOOR_MAX_DB)
        since = self.spurt_start_at_segment
        if (every is not None and since is not None
                and frame - frame % SEGMENT_FRAMES - since >= LONG_SPURT_FRAMES):
            return max(quiet, every)
        return quiet

    def _background_spread_db(self, noise: float | None) -> float | None:
        """How far the background between spurts reaches over its 30th percentile (to its
        80th), once it is trusted (:data:`QUIET_MIN_FRAMES`); None before, or without
        ``noise``."""
        bg = self.noise
        if (noise is None or bg.upper_dbfs is None or bg.live_dbfs is None
                or bg.frames < QUIET_MIN_FRAMES):
            return None
        return bg.upper_dbfs - bg.live_dbfs

    def noise_reach_dbfs(self, frame: int) -> float | None:
        """How loud the party's background gets at ``frame``: its 80th percentile between
        spurts once trusted (a swelling noise's 30th percentile sits in its dips, 10-15 dB
        under its swells), else :meth:`background_dbfs`."""
        noise = self.background_dbfs(frame)
        spread = self._background_spread_db(noise)
        if noise is None or spread is None:
            return noise
        return noise + max(0.0, spread)

    def noise_margin_db(self, noise: float | None) -> float:
        """See :data:`NOISE_LEVEL_MARGIN_DB`: the full margin until the background between
        spurts is trusted."""
        spread = self._background_spread_db(noise)
        if spread is None:
            return NOISE_LEVEL_MARGIN_DB
        return min(NOISE_LEVEL_MARGIN_DB,
                   max(STEADY_NOISE_MARGIN_DB, spread + NOISE_SPREAD_MARGIN_DB))

    def listen_dbfs(self, noise: float | None) -> float | None:
        """Where the listening VAD starts in a steady background the party barely stands out
        of (see :data:`LISTEN_MAX_SPREAD_DB`): the background's 80th percentile, at least
        :data:`LISTEN_MIN_MARGIN_DB` over ``noise``; None elsewhere (the full gate alone).
        What it depends on changes at segment ends only, so it does not depend on how the
        audio is chunked."""
        spread = self._background_spread_db(noise)
        if noise is None or spread is None or spread > LISTEN_MAX_SPREAD_DB:
            return None
        own = self.voice_dbfs()
        if own is None and noise < LISTEN_QUIET_ROOM_DBFS:
            return None
        if own is not None and own - noise > LISTEN_MAX_SNR_DB:
            return None
        return noise + max(LISTEN_MIN_MARGIN_DB, spread)

    def gate(
        self, feats: FrameFeatures, pcm16: np.ndarray, clicks: np.ndarray,
        floor_extra: np.ndarray | None, frame: int, far_lagged: np.ndarray | None = None,
    ) -> Gates:
        """Speech decision per frame (stands out of the noise and leak, then webrtcvad),
        which speech frames are strong enough to start a spurt and to carry one on after a
        pause, which stood out of the background enough to start one but were held back by
        the party's own level alone (:mod:`dsp.voice_drop`), and which frames count towards
        speech time near a spurt
        (:mod:`dsp.speech_time`: speech frames and soft edges, above the background and any
        leak and within :data:`EDGE_WITHIN_DB` of the party's level, less clicks: see
        :data:`SPEECH_TIME_MAX_CREST_DB`; in a steady background, also what the VAD hears
        just above it: :data:`LISTEN_MAX_SPREAD_DB`); ``clicks`` are the frames that are no
        voice whatever the VAD says (clicks, :func:`impulsive`, and signalling tones,
        :mod:`dsp.tones`); ``frame`` is the first frame's index; ``far_lagged`` (the mic
        only) is the far end's level at every delay of a leak (see
        :meth:`dsp.party_vad.PartyVads.classify`)."""
        db = feats.rms_dbfs
        noise = self.background_dbfs(frame)
        floor = self.floor.floors(db)
        threshold = floor + self.speech_margin_db
        np.maximum(threshold, self.min_speech_dbfs, out=threshold)
        background = floor if noise is None else np.maximum(floor, noise)
        margin = self.noise_margin_db(noise)
        if noise is not None:
            np.maximum(threshold, noise + margin, out=threshold)
        if floor_extra is not None:
            np.maximum(threshold, floor_extra, out=threshold)
        not_click = ~clicks
        speech = db >= threshold
        speech &= not_click
        own = self.voice_dbfs()
        self.vads.classify(pcm16, db, speech, own, far_lagged)
        listen = self.listen_dbfs(noise)
        heard = None
        if listen is not None:
            heard = db >= max(listen, self.min_speech_dbfs)
            if floor_extra is not None:
                heard &= db >= floor_extra
            heard &= not_click
            self.vads.listen(pcm16, heard, own, LISTEN_VAD_GAIN_DB)
            speech |= heard & (db >= threshold)
            heard |= speech
        start = np.maximum(threshold, background + margin + SPURT_PEAK_MARGIN_DB)
        resume = threshold
        held = None
        if own is not None:
            held = db >= start
            seg_start = frame - frame % SEGMENT_FRAMES
            quiet_s = max(0, seg_start - self.last_speech_at_segment) * FRAME_S
            ref = own - START_DECAY_DB_PER_S * quiet_s
            start = np.maximum(start, ref - START_BELOW_LEVEL_DB)
            held &= db < start
            held &= speech
            resume = np.maximum(threshold, ref - RESUME_BELOW_LEVEL_DB)
            edge_at = np.maximum(background + EDGE_MARGIN_DB, own - EDGE_WITHIN_DB)
            upper = self.noise.upper_dbfs
            if upper is not None and self.noise.frames >= QUIET_MIN_FRAMES:
                np.maximum(edge_at, upper, out=edge_at)
            if floor_extra is not None:
                np.maximum(edge_at, floor_extra, out=edge_at)
            audible = (db >= edge_at) & not_click
            audible |= speech
        else:
            audible = speech.copy()
        if heard is not None:
            audible |= heard
        audible &= feats.peak_dbfs - db < SPEECH_TIME_MAX_CREST_DB
        if held is None:
            held = np.zeros_like(speech)
        return Gates(speech, speech & (db >= start), speech & (db >= resume), audible, held)

    def gather(self, frames_: np.ndarray, speech: np.ndarray, act: np.ndarray,
               feats: FrameFeatures, explained: np.ndarray | None, i0: int) -> None:
        """Count frames ``i0 ..`` (samples ``frames_``, speech decisions, spurt activity,
        features, and which frames the far end's leak may explain) into the counters, the
        P.56 meter and what the current segment gathers."""
        n = len(act)
        self.audio_frames[0] += n
        self.audio_frames[1] += n
        clipped = int(np.add.reduce(feats.clipped))
        self.clipped[0] += clipped
        self.clipped[1] += clipped
        self.seg_clipped += clipped
        if np.count_nonzero(act):
            self.meter.process(frames_[act, ::P56_DECIMATION].ravel())
            # The level window takes speech frames of the party's spurts only: a background
            # voice the gate lets through between spurts is not their level.
            voiced = speech & act
            if np.count_nonzero(voiced):
                self.seg_speech.append(feats.energy[voiced])
        busy = act if explained is None else act | explained
        self.seg_idle.add(~busy, i0, feats.rms_dbfs)
        quiet = speech | busy
        np.logical_not(quiet, out=quiet)
        self.seg_quiet.add(quiet, i0, feats.rms_dbfs)
        self.seg_levels.append(feats.rms_dbfs)
        self.last_rms = float(feats.rms_dbfs[-1])
        self.last_peak = float(feats.peak_dbfs[-1])

    def add_speech_energy(self, energies: np.ndarray) -> None:
        """Speech frames' mean squares into the level window (a ring: the oldest go)."""
        window, pos = self.level_energy, self.level_pos
        size = window.size
        tail = energies[-size:]
        k = tail.size
        first = min(k, size - pos)
        window[pos : pos + first] = tail[:first]
        window[: k - first] = tail[first:]
        self.level_pos = (pos + k) % size
        self.level_count += energies.size
        n = min(self.level_count, size)
        self._energy_mean = float(window[:n].mean()) if n else None

    def forget_voice(self) -> None:
        """Forget the party's level: their voice dropped (:mod:`dsp.voice_drop`), or the call
        ended and the next far end is someone else. The gates judge them against the
        background alone, and a quiet voice reaches the VAD raised
        (:meth:`dsp.party_vad.PartyVads.classify`), until the level window has learnt the
        new level."""
        self.level_pos = self.level_count = 0
        self._energy_mean = None
        self.vads.loud_frames = 0
        self.voice_drop.clear()

    def level_dbfs(self) -> float | None:
        """Power mean of the last ``level_window_s`` of speech frames, once the window is full."""
        if self.level_count < self.level_energy.size or self._energy_mean is None:
            return None
        return power_dbfs(self._energy_mean)

    def voice_dbfs(self, min_frames: int = VOICE_MIN_FRAMES) -> float | None:
        """The power mean of the level window's speech frames so far, once it holds
        ``min_frames`` of them (by default a second: the party's own level for the spurt
        gates). Updated at segment ends only, so it does not depend on how the input was
        chunked."""
        n = min(self.level_count, self.level_energy.size)
        if n < min_frames or self._energy_mean is None:
            return None
        return power_dbfs(self._energy_mean)

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
