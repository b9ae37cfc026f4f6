"""A neural second opinion on the voices of a talk-over about to be reported, in noise.

WebRTC's VAD takes half the frames of a real street or train ambience for a voice, and such
noise swells and clatters by 6-11 dB over its own typical level within seconds, so neither
the level gates nor the voicing veto can tell its bursts from a party's words (the rumble is
as periodic as a vowel). In the development draws' clean calls with a recorded town-and-train
ambience mixed into one party's channel at 5-10 dB SNR (``bench.probe_ambience``), 83 (the
agent's mic) and 101 (the customer's line) false talk-overs an hour came through, nearly all
noise on one side taken for that party cutting in. silero-vad, a small neural detector
trained on noise, hears almost none of those bursts as speech: over the overlap of each false
talk-over, the party it heard less was heard in a median 0 % of the frames, against 85 % on
the true talk-overs in the same noise.

So a talk-over confirmed while a party's own voice stands less than :data:`MAX_SNR_DB` over
their background (or, before their voice is known, in a background of
:data:`NOISY_BACKGROUND_DBFS` or more) is reported only if silero hears that party in at
least :data:`MIN_SHARE` of the overlap's frames. Only then: in a quiet line the gates decide
well, silero is less sure of a quiet or band-limited voice (one 8 kHz party at -48 dBFS had
4 % of a real talk-over), and each 32 ms window costs it a fraction of a millisecond.

The engine is optional (``callwatch[neural]``): ``confirm_vad = "auto"`` uses silero when its
packages are installed and nothing otherwise. silero starts from a fresh state
:data:`CONTEXT_FRAMES` before the overlap and carries on from there while the checks that
follow (a vetoed episode is judged again every few frames) stay close to it; what it is fed
depends on frame indices only, so the events do not depend on how the audio is chunked.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from dsp import FRAME_LEN
from dsp.vad import INSTALL_HINT, MissingVadPackage, SileroVad, silero_model_path

CONFIRM_ENGINES = ("auto", "silero", "none")
"""The ``confirm_vad`` setting's choices."""

MIN_SHARE = 0.3
"""Share of a checked party's overlap frames silero must hear as speech (at its own
threshold, 0.5). Over the overlaps the pipeline reported without the check, the quieter
party's share was a median 0.92 on the development draws' true talk-overs and 0 on the false
ones in the train ambience (95th percentile 0.25). With the check, 0.2, 0.3 and 0.4 lost 0, 0
and 1 of the draws' 975 found talk-overs; in the ambience, 0.3 let through half the false ones
0.2 did (most of those left near 0.2-0.35: the noise's loudest swells), at one found
talk-over fewer on each side."""

MAX_SNR_DB = 20.0
"""A party is checked while their voice stands less than this over their background."""

NOISY_BACKGROUND_DBFS = -50.0
"""Before a party's voice is known, they are checked in a background this loud or louder."""

CONTEXT_FRAMES = 50
"""silero hears this much (1 s) before the overlap first: a recurrent model that starts cold
on a word misses it."""


def confirm_available(engine: str) -> bool:
    """Whether ``engine`` (one of :data:`CONFIRM_ENGINES`) checks talk-overs here: ``none``
    never, ``auto`` when silero's packages are installed, ``silero`` always (raises
    :class:`dsp.vad.MissingVadPackage` without them). Nothing is loaded: the model is, at
    the first check (:class:`VoiceConfirm`), so a call that never needs one does not pay
    for onnxruntime."""
    if engine not in CONFIRM_ENGINES:
        raise ValueError(f"unknown confirm_vad {engine!r}; choose one of "
                         f"{', '.join(CONFIRM_ENGINES)}")
    if engine == "none":
        return False
    try:
        silero_model_path()
        if importlib.util.find_spec("onnxruntime") is None:
            raise MissingVadPackage(
                f"confirm_vad 'silero' needs the Python package 'onnxruntime': {INSTALL_HINT}")
    except MissingVadPackage:
        if engine == "auto":
            return False
        raise
    return True


def needs_check(voice_dbfs: float | None, noise_dbfs: float | None) -> bool:
    """Whether a party with this voice level, in a background that reaches ``noise_dbfs``
    (:meth:`dsp.party.Party.noise_reach_dbfs`), is checked (see the module doc)."""
    if noise_dbfs is None:
        return False
    if voice_dbfs is None:
        return noise_dbfs >= NOISY_BACKGROUND_DBFS
    return voice_dbfs - noise_dbfs < MAX_SNR_DB


class PartyScores:
    """silero's frame scores for one party from an anchor frame on, extended on demand."""

    def __init__(self, model: SileroVad) -> None:
        self.model = model
        self.anchor: int | None = None
        self.next = 0
        self.scores = np.zeros(0)

    def share(self, history: np.ndarray, start: int, end: int, span: int) -> float:
        """Share of frames ``start .. end`` silero hears as speech; ``history`` is a ring of
        int16 frames indexed by frame modulo its length, holding at least the last ``span``
        frames before ``end``. It goes on from the frames it has scored when those cover the
        context before ``start`` and fewer frames are missing than a fresh start would
        score; otherwise it starts afresh :data:`CONTEXT_FRAMES` before ``start``."""
        first = max(start - CONTEXT_FRAMES, end - span)
        if (self.anchor is None or self.anchor > first or self.next > end
                or end - self.next > end - first):
            self.model.reset()
            self.anchor = self.next = first
            self.scores = np.zeros(0)
        if end > self.next:
            pos = np.arange(self.next, end) % len(history)
            self.scores = np.concatenate([self.scores, self.model.frame_scores(history[pos])])
            self.next = end
            if self.scores.size > 2 * span:  # a long vetoed episode: keep what checks read
                self.scores = self.scores[-span:]
                self.anchor = end - span
        window = self.scores[max(start, first) - self.anchor: end - self.anchor]
        return float(np.mean(window >= self.model.on)) if window.size else 1.0


class VoiceConfirm:
    """silero's verdicts on both parties' frames (see the module doc), from a ring of their
    last ``history_frames`` frames that is written ``ahead`` frames at most past the frames
    checked; the model is loaded at the first check."""

    def __init__(self, history_frames: int, ahead: int) -> None:
        self._ring = np.zeros((2, history_frames, FRAME_LEN), dtype=np.int16)
        """Both parties' frames as the VAD hears them, [agent, customer]."""
        self._span = history_frames - ahead
        self._checked = (False, False)
        self._parties: tuple[PartyScores, PartyScores] | None = None

    def record(self, pos: np.ndarray, agent: np.ndarray, customer: np.ndarray,
               checked: tuple[bool, bool]) -> None:
        """Frames at ring positions ``pos``; ``checked``: whether each party, [agent,
        customer], is in enough noise to be checked from now on (:func:`needs_check`)."""
        self._ring[0, pos] = agent
        self._ring[1, pos] = customer
        self._checked = checked

    def unheard(self, start: int, end: int) -> bool:
        """Whether a checked party is heard as speech in under :data:`MIN_SHARE` of frames
        ``start .. end`` (see :meth:`PartyScores.share`)."""
        if not any(self._checked):
            return False
        if self._parties is None:
            model = SileroVad(2)
            self._parties = (PartyScores(model), PartyScores(model.sibling()))
        span = self._span
        return any(on and party.share(ring, start, end, span) < MIN_SHARE
                   for on, party, ring in zip(self._checked, self._parties, self._ring,
                                              strict=True))
