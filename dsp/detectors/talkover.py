"""Talk-over: both parties speaking at once for at least ``min_overlap_s``, and who started it.

The initiator is the party whose activity run began second, i.e. who started speaking while
the other was already talking (its voice: see :attr:`dsp.activity.TalkSpurts.voice_start`).
The overlap is measured between the parties' last *speech* frames (not their hangovers), so a
quick turn change never looks like an interruption; stretches of overlap less than 0.5 s apart
are one episode (a turn's pauses do not split it); and both parties must actually be speaking
through most of it (``min_density``), so a few keystrokes or a cough under the other's speech
do not count. Backchannels ("mm-hmm", "yeah") are shorter than the minimum overlap and so are
not interruptions.

:class:`TalkOverDetector` is the overlap state machine; :class:`TalkOver` wraps it with the
vetting that drops what is not two people talking (far-end leak into the mic, keystrokes,
and, for a party in loud or swelling noise, what a neural VAD does not hear as a voice:
:mod:`dsp.voice_confirm`), the events and the counters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsp import FRAME_LEN, FRAME_S
from dsp.activity import GAP_FILL_FRAMES, RUN_GAP_FRAMES, TalkSpurts
from dsp.detectors import event
from dsp.echo import ECHO_MARGIN_DB, EchoEstimator
from dsp.events import Event, Kind, Phase, Stream
from dsp.pace import VOICING_MIN, voicings
from dsp.party import SEGMENT_FRAMES, frames
from dsp.settings import DetectorSettings
from dsp.speech_time import EDGE_FRAMES
from dsp.voice_confirm import VoiceConfirm, confirm_available

MERGE_FRAMES = 25
"""Stretches of both parties speaking less than 0.5 s apart are one talk-over (the accuracy
definitions' merge, DESIGN.md §4.4)."""

ONSET_LAG_FRAMES = 50
"""A stretch is seen only once both spurts are on, which can be a second after its first
speech frame (a spurt's onset run, or a soft phrase that reaches the resume level late);
the gap to it is measured from that first frame, so an episode is held open this much longer
than the merge distance before it is closed. Closed sooner, a long talk-over whose
interrupted party's next phrase starts softly is reported twice, the second time with the
initiator reversed. The END is known this late; the nudge still resolves from the real end
(see :meth:`alerts.policy.AlertPolicy.update`)."""

HISTORY_FRAMES = 512
"""Frame levels kept for vetting talk-overs (10 s)."""

VETO_LEAK_CORRELATION = 0.8
"""An overlap whose agent level tracks the customer's this closely is leak, not speech."""

LEAK_FOLLOWS_CORRELATION = 0.5
LEAK_STEADY_SPREAD_DB = 4.0
"""An overlap whose agent level follows the customer's more loosely is leak too when, at that
delay, the mic stands a steady distance under the far end in most frames (the median of mic
minus far end within this of its 10th percentile). The room's own noise in the mic buries
the far end's quieter frames, which loosens the correlation of leak early in a call, before
the echo estimator has it; a voice of the agent's own stands 10-17 dB over the leak in
half its frames or more, and its correlation with the far end is near zero."""

LEAK_EXPLAINS_FRACTION = 0.8
"""A held talk-over whose agent frames the estimated leak accounts for this often is the far
end in the mic (see :meth:`TalkOver.step`). An agent who really talks over the customer
stands over the leak in most frames of their speech; their pauses do not."""

VETO_CLICK_FRACTION = 0.2
"""An overlap in which this share of the agent's frames are clicks is typing."""

VETO_VOICED_FRACTION = 0.3
"""An overlap in which fewer of the agent's strong frames than this are voiced (periodic at
a pitch lag, :func:`dsp.pace.voicings`) is no voice: a coughing fit, crisps crunched next to
the mic, keystrokes the click gate let through. WebRTC's VAD flags such bursts as speech and
they stand out of a quiet room as a voice does; a talker's strong frames are mostly vowels
(on the development draws, the agent's side of real talk-overs had 54 % voiced frames or
more; coughs and crunches had none)."""

REVIVED_MIN_OVERLAP_FRAMES = 15
"""A vetoed episode is revived only if both parties were heard together for this long (0.3 s)
after the agent's voice began in it. Less is the customer finishing a turn the agent takes
(a turn-end overlap, which the accuracy definitions never count as a talk-over); without
this, an agent who typed while the customer spoke and then answered was reported as talking
over them, the "talk-over" a few hundredths of a second long."""

REVET_FRAMES = 10
"""A vetoed episode that goes on is judged again this often (0.2 s)."""

REVET_BEFORE_FRAMES = 100
REVET_LOOKBACK_FRAMES = 400
"""Whether the agent of a revived episode was talking before the customer is judged on their
last 2 s before the customer's voice, no further back than 8 s (within the 10 s of frame
history, less a segment recorded ahead); see :meth:`TalkOver._talking_before`."""


@dataclass(frozen=True, slots=True)
class OverlapChange:
    """A talk-over confirmed (``begin``) or over (``begin`` False), in frame indices."""

    begin: bool
    start: int
    end: int
    initiator: Stream


class TalkOverDetector:
    """Talk-over *episodes*, stepped once per frame with both parties' spurt states.

    A turn holds pauses of 0.3-1 s between phrases, as long as the gaps between speakers
    (Heldner & Edlund, 2010), so a talk spurt often ends inside a turn. An overlap is therefore
    not over when a spurt ends: stretches where both speak, separated by less than
    ``merge_frames``, are one episode (as the accuracy definitions merge fragments closer than
    0.5 s). The episode's initiator is fixed at its first stretch: the party whose activity run
    began later. Were each stretch judged on its own, the interrupted party's next phrase
    would look like a new interruption by them, and a long talk-over broken by pauses would
    never reach the minimum length.
    """

    def __init__(self, min_frames: int, min_density: float = 0.4,
                 merge_frames: int = MERGE_FRAMES) -> None:
        self.min_frames = max(1, min_frames)
        self.min_density = min_density
        self.merge_frames = merge_frames
        self.in_overlap = False
        """An episode is open (confirmed or not)."""
        self.confirmed = False
        self.vetoed = False
        """The current episode was judged not to be a talk-over (see :meth:`veto`)."""
        self.start = 0
        self.end = 0
        """Just after the last frame both parties were heard in, so far."""
        self.initiator = Stream.CUSTOMER
        self._frames = 0
        self._agent_speech = 0
        self._customer_speech = 0

    def step(
        self,
        i: int,
        agent: TalkSpurts,
        customer: TalkSpurts,
        agent_speech: bool,
        customer_speech: bool,
        agent_audible: bool = False,
        customer_audible: bool = False,
    ) -> OverlapChange | None:
        """Frame ``i``. ``*_audible``: the frame stands out as the party's speech to the speech
        time's softer measure (:mod:`dsp.speech_time`). An open episode lives on through frames
        both parties are audible in, within :data:`~dsp.speech_time.EDGE_FRAMES` of their
        last speech frames and of its end: the soft end of a phrase the gate missed in noise
        is not a pause between two talk-overs, and an episode closed there was reported
        twice (12 of the 19 false talk-overs of the development draws were such splits)."""
        if (self.in_overlap and agent_audible and customer_audible
                and i - self.end <= EDGE_FRAMES
                and i - agent.last_speech <= EDGE_FRAMES
                and i - customer.last_speech <= EDGE_FRAMES):
            self.end = i + 1
        both = (agent.active and customer.active
                and i - agent.last_speech <= GAP_FILL_FRAMES
                and i - customer.last_speech <= GAP_FILL_FRAMES)
        if both:
            if self.in_overlap and (max(agent.run_start, customer.run_start) - self.end
                                    >= self.merge_frames):
                # A new stretch whose (backdated) start is too far from the last: the open
                # episode ended there.
                change = self._close()
                self._open(i, agent, customer)
                self._count(agent, customer, agent_speech, customer_speech)
                return change
            if not self.in_overlap:
                self._open(i, agent, customer)
            self._count(agent, customer, agent_speech, customer_speech)
            if (not self.confirmed and self.end - self.start >= self.min_frames
                    and self._dense()):
                self.confirmed = True
                return OverlapChange(True, self.start, i + 1, self.initiator)
            return None
        if self.in_overlap and i - self.end >= self.merge_frames + ONSET_LAG_FRAMES:
            return self._close()
        return None

    def _count(self, agent: TalkSpurts, customer: TalkSpurts, agent_speech: bool,
               customer_speech: bool) -> None:
        self._frames += 1
        self._agent_speech += agent_speech
        self._customer_speech += customer_speech
        self.end = max(self.end, min(agent.last_speech, customer.last_speech) + 1)

    def _open(self, i: int, agent: TalkSpurts, customer: TalkSpurts) -> None:
        self.in_overlap = True
        self.confirmed = self.vetoed = False
        a0, c0 = agent.run_start, customer.run_start
        self.start = max(a0, c0)
        self.end = self.start
        self.initiator = (Stream.AGENT if agent.voice_start > customer.voice_start
                          else Stream.CUSTOMER)
        # Frames between the episode's start and now were speech for the later starter (its
        # onset run) and, by the spurt's definition, mostly for the earlier one.
        back = max(0, i - self.start)
        self._frames = self._agent_speech = self._customer_speech = back

    def _close(self) -> OverlapChange | None:
        reported = self.confirmed and not self.vetoed
        self.in_overlap = self.confirmed = False
        if not reported:
            return None
        return OverlapChange(False, self.start, max(self.end, self.start + 1), self.initiator)

    def close(self, agent: TalkSpurts, customer: TalkSpurts) -> OverlapChange | None:
        """End the open episode at the end of input (or of the call)."""
        if not self.in_overlap:
            return None
        return self._close()

    def revive(self, start: int, initiator: Stream) -> None:
        """A vetoed episode is a talk-over after all, from ``start``."""
        self.vetoed = False
        self.start = start
        self.end = max(self.end, start + 1)
        self.initiator = initiator

    def veto(self) -> None:
        """Drop the episode just confirmed: the caller found it is not two people talking
        (the agent's side is the far end leaking back, or keystrokes). No END will follow."""
        self.vetoed = True

    def _dense(self) -> bool:
        need = self.min_density * self._frames
        return self._agent_speech >= need and self._customer_speech >= need


class TalkOver:
    """Talk-over events and counters, from the parties' spurts stepped once per frame.

    ``record`` is fed each slice's frame levels (and the agent's clicks) before its frames are
    stepped, so that an overlap about to be reported can be vetted against them.
    """

    def __init__(self, settings: DetectorSettings, echo: EchoEstimator) -> None:
        self.overlap = TalkOverDetector(frames(settings.min_overlap_s))
        self._confirm_engine = ""
        self._confirm: VoiceConfirm | None = None
        """silero's second opinion on each party's side in noise (:mod:`dsp.voice_confirm`)."""
        self._set_confirm(settings.confirm_vad)
        self.echo = echo
        """The far end's coupling into the mic (see :meth:`step`)."""
        self.max_lag = echo.max_lag
        """Longest far-end delay (frames) searched for leak, as the echo estimator's."""
        self._a_hist = np.zeros(HISTORY_FRAMES)
        self._c_hist = np.zeros(HISTORY_FRAMES)
        self._click_hist = np.zeros(HISTORY_FRAMES, dtype=bool)
        self._strong_hist = np.zeros(HISTORY_FRAMES, dtype=bool)
        self._frame_hist = np.zeros((HISTORY_FRAMES, FRAME_LEN), dtype=np.float32)
        """The agent's samples, for the voicing of an overlap's strong frames."""
        self._vetted_at = 0
        self._held: OverlapChange | None = None
        """A talk-over confirmed before the echo estimator's first estimate, not yet reported
        (see :meth:`step`)."""
        # [this call, lifetime] x [count, frames, by agent, by customer, frames by agent,
        # frames by customer]
        self.counts = [[0] * 6, [0] * 6]

    def configure(self, s: DetectorSettings, echo: EchoEstimator) -> None:
        self.overlap.min_frames = frames(s.min_overlap_s)
        self.echo = echo
        self.max_lag = echo.max_lag
        self._set_confirm(s.confirm_vad)

    def _set_confirm(self, engine: str) -> None:
        if engine == self._confirm_engine:
            return
        self._confirm_engine = engine
        # The ring runs a slice (at most a segment) ahead of the frame being stepped.
        self._confirm = (VoiceConfirm(HISTORY_FRAMES, SEGMENT_FRAMES)
                         if confirm_available(engine) else None)

    @property
    def confirms(self) -> bool:
        """Whether talk-overs in noise get silero's second opinion."""
        return self._confirm is not None

    def start_call(self) -> None:
        self.counts[0] = [0] * 6

    def record(self, first: int, agent_frames: np.ndarray, agent_dbfs: np.ndarray,
               customer_dbfs: np.ndarray, agent_clicks: np.ndarray,
               agent_strong: np.ndarray,
               pcm: tuple[np.ndarray, np.ndarray] | None = None,
               checked: tuple[bool, bool] = (False, False)) -> None:
        """One slice of frames, all in one segment. ``pcm``: both parties' frames as the VAD
        hears them, [agent, customer]; ``checked``: whether each party is in enough noise for
        silero's check (:func:`dsp.voice_confirm.needs_check`)."""
        pos = _hist_pos(first, len(agent_dbfs))
        self._frame_hist[pos] = agent_frames
        if pcm is not None and self._confirm is not None:
            self._confirm.record(pos, pcm[0], pcm[1], checked)
        self._a_hist[pos] = agent_dbfs
        self._c_hist[pos] = customer_dbfs
        self._click_hist[pos] = agent_clicks
        self._strong_hist[pos] = agent_strong

    @property
    def in_overlap(self) -> bool:
        return self.overlap.in_overlap

    def earliest_begin(self, frame: int, agent: TalkSpurts, customer: TalkSpurts) -> int:
        """The smallest frame index at which a talk-over ``BEGIN`` can end (its ``end`` over
        the frame length) when frames from ``frame`` on are stepped.

        An episode opens at the later of the parties' activity runs and is confirmed no
        sooner than ``min_overlap_s`` after that start; a party's next run keeps its current
        start only if its next speech frame can still continue it (within
        :data:`~dsp.activity.RUN_GAP_FRAMES` of the last, or it is in a spurt), else it
        starts at ``frame`` or later. An open episode not yet confirmed is confirmed no
        sooner than ``min_overlap_s`` after its start. One already reported brings the next
        ``BEGIN`` no sooner than a new stretch ``merge_frames`` after its end, or its close,
        can be confirmed. A vetoed episode (judged again every few frames) or one held for
        the echo estimate can bring one at any frame."""
        ov = self.overlap
        if self._held is not None or (ov.in_overlap and ov.vetoed):
            return frame + 1
        if ov.in_overlap:
            if not ov.confirmed:
                return max(frame + 1, ov.start + ov.min_frames)
            return max(frame + 1, ov.end + ov.merge_frames
                       + min(ov.min_frames, ONSET_LAG_FRAMES + 1))
        start = max(_run_start_bound(agent, frame), _run_start_bound(customer, frame))
        return max(frame + 1, start + ov.min_frames)

    def step(self, i: int, agent: TalkSpurts, customer: TalkSpurts, agent_speech: bool,
             customer_speech: bool, agent_audible: bool = False,
             customer_audible: bool = False) -> tuple[Event, ...]:
        """Frame ``i``; to be called while both are in a spurt or an overlap is open.

        A talk-over confirmed before the echo estimator's first estimate (the call's first
        second or two of far-end speech) is held back until there is one: the far end
        leaking from laptop speakers into a mic that is otherwise silent looks like the agent
        talking over the customer, and the frame-level leak test (:meth:`_not_a_voice`) has
        too few frames to be sure of it that early. It is reported then, from its start,
        unless the leak the estimator finds explains the agent's side; one that is over before
        is reported as it ends."""
        change = self.overlap.step(i, agent, customer, agent_speech, customer_speech,
                                   agent_audible, customer_audible)
        ov = self.overlap
        held = self._held
        if held is not None:
            if change is not None and not change.begin:
                self._held = None
                return self._event(held), self._event(change)
            if self.echo.undecided:
                return ()
            self._held = None
            if self._leak_explains(held.start, i + 1):
                ov.veto()
                self._vetted_at = i
                return ()
            return (self._event(OverlapChange(True, held.start, i + 1, held.initiator)),)
        if change is None:
            if ov.vetoed and ov.in_overlap and i - self._vetted_at >= REVET_FRAMES:
                return self._revet(i, agent, customer)
            return ()
        if change.begin:
            if self._not_a_voice(change.start, i + 1) or (
                    self._confirm is not None and self._confirm.unheard(change.start, i + 1)):
                ov.veto()
                self._vetted_at = i
                return ()
            if self.echo.undecided:
                self._held = change
                return ()
        return (self._event(change),)

    def _revet(self, i: int, agent: TalkSpurts, customer: TalkSpurts) -> tuple[Event, ...]:
        """Judge a vetoed episode again on its last ``min_overlap_s``: an agent who types and
        then starts talking over the customer opens the episode with keystrokes, and the veto
        must not swallow the speech that follows. The agent's voice must fill the window
        (strong frames at the episode's density, few clicks, no leak correlation); the
        talk-over then starts at its first strong frame. Who started it is judged on where
        the agent's voice began (:meth:`_talking_before`), not on that frame: a voice whose
        plosives the click gate took for keystrokes was vetoed as typing though the agent
        had been talking all along, and the customer who cut in was not blamed."""
        self._vetted_at = i
        ov = self.overlap
        n = ov.min_frames
        first = i + 1 - n
        strong = self._strong_hist[_hist_pos(first, n)]
        if strong.mean() < ov.min_density or self._not_a_voice(first, i + 1):
            return ()
        start = first + int(np.argmax(strong))
        if ov.end - start < REVIVED_MIN_OVERLAP_FRAMES:
            return ()  # what overlaps the agent's voice is a turn's end: they took the turn
        if self._confirm is not None and self._confirm.unheard(first, i + 1):
            return ()
        first_talker = (customer.voice_start <= start and not self._talking_before(
            agent, customer, i + 1 - REVET_LOOKBACK_FRAMES, ov.min_density))
        initiator = Stream.AGENT if first_talker else Stream.CUSTOMER
        ov.revive(start, initiator)
        return (self._event(OverlapChange(True, start, i + 1, initiator)),)

    def close(self, frame: int, agent: TalkSpurts, customer: TalkSpurts) -> list[Event]:
        """End of input or call at ``frame`` (the overlap ends at the last speech)."""
        change = self.overlap.close(agent, customer)
        held, self._held = self._held, None
        if change is None:
            return []
        return ([] if held is None else [self._event(held)]) + [self._event(change)]

    def _leak_explains(self, start: int, end: int) -> bool:
        """Whether the far end's leak, as the echo estimator has it, accounts for the agent's
        frames from ``start`` to ``end``: at least :data:`LEAK_EXPLAINS_FRACTION` of them
        within :data:`dsp.echo.ECHO_MARGIN_DB` of the leak's predicted level (the margin the
        speech gate asks of the agent's voice once the leak is known)."""
        echo = self.echo
        if not echo.present:
            return False
        start = max(start, end - HISTORY_FRAMES + self.max_lag + 2)
        n = end - start
        if n <= 0:
            return False
        pos = _hist_pos(start, n)
        d = echo.delay_frames
        near = np.max([self._c_hist[(pos - lag) % HISTORY_FRAMES]
                       for lag in range(max(0, d - 1), min(self.max_lag, d + 1) + 1)], axis=0)
        reach = near + (echo.coupling_db + ECHO_MARGIN_DB)
        return float(np.mean(self._a_hist[pos] <= reach)) >= LEAK_EXPLAINS_FRACTION

    def _not_a_voice(self, start: int, end: int) -> bool:
        """Whether the agent's side of an overlap about to be reported is not a voice: the
        far end leaking into the mic (its level follows the customer's, frame by frame, at
        some delay, even before the echo estimator has locked on; see
        :data:`LEAK_STEADY_SPREAD_DB`), mostly keystrokes, or unvoiced bursts
        (:data:`VETO_VOICED_FRACTION`)."""
        start = max(start, end - HISTORY_FRAMES + self.max_lag + 1)
        n = end - start
        if n < 10:
            return False
        pos = _hist_pos(start, n)
        if self._click_hist[pos].mean() >= VETO_CLICK_FRACTION:
            return True
        strong = self._strong_hist[pos]
        if strong.any():
            voiced = voicings(self._frame_hist[pos[strong]]) >= VOICING_MIN
            if voiced.mean() < VETO_VOICED_FRACTION:
                return True
        levels = self._a_hist[pos]
        a = levels - levels.mean()
        for lag in range(self.max_lag + 1):
            far = self._c_hist[(pos - lag) % HISTORY_FRAMES]
            c = far - far.mean()
            denom = math.sqrt(float(a @ a) * float(c @ c))
            if denom <= 0:
                continue
            corr = float(a @ c) / denom
            if corr >= VETO_LEAK_CORRELATION:
                return True
            if corr >= LEAK_FOLLOWS_CORRELATION:
                q10, q50 = np.percentile(levels - far, (10, 50))
                if q50 - q10 <= LEAK_STEADY_SPREAD_DB:
                    return True
        return False

    def _talking_before(self, agent: TalkSpurts, customer: TalkSpurts, limit: int,
                        density: float) -> bool:
        """Whether the agent's voice was going before the customer's began: their activity
        run started first, and in its last :data:`REVET_BEFORE_FRAMES` before the customer's
        voice (no further back than ``limit``) their strong frames reach ``density`` and
        clicks stay under :data:`VETO_CLICK_FRACTION`. Keystrokes give strong frames too, but
        too sparsely, and many of them clicks."""
        end = customer.voice_start
        start = max(agent.voice_start, end - REVET_BEFORE_FRAMES, limit)
        if end - start < REVET_FRAMES:
            return False
        pos = _hist_pos(start, end - start)
        return bool(self._strong_hist[pos].mean() >= density
                    and self._click_hist[pos].mean() < VETO_CLICK_FRACTION)

    def _event(self, change: OverlapChange) -> Event:
        if change.begin:
            for span in (0, 1):
                counts = self.counts[span]
                counts[0] += 1
                counts[2 if change.initiator is Stream.AGENT else 3] += 1
            return event(Kind.TALK_OVER, Phase.BEGIN, None, change.start, change.end,
                         initiator=change.initiator.value)
        by = 4 if change.initiator is Stream.AGENT else 5
        for span in (0, 1):
            self.counts[span][1] += change.end - change.start
            self.counts[span][by] += change.end - change.start
        return event(Kind.TALK_OVER, Phase.END, None, change.start, change.end,
                     initiator=change.initiator.value,
                     duration_s=(change.end - change.start) * FRAME_S)


def _run_start_bound(sp: TalkSpurts, frame: int) -> int:
    """The earliest ``run_start`` the party can have from ``frame`` on."""
    if sp.active or frame - sp.last_heard <= RUN_GAP_FRAMES:
        return sp.run_start
    return frame


def _hist_pos(first: int, n: int) -> np.ndarray:
    return (first + np.arange(n)) % HISTORY_FRAMES
