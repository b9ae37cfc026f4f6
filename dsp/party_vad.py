"""The VADs that judge one party's frames: the party's own, and two that hear frames it must
not (it adapts to what it is given): a quiet party's frames raised before their level is known,
and the frames just above a steady background (:data:`dsp.party.LISTEN_MAX_SPREAD_DB`).

The energy gates in :meth:`dsp.party.Party.gate` decide which frames stand out of the noise;
these only have to say "voice".
"""

from __future__ import annotations

import numpy as np

from dsp.settings import DetectorSettings
from dsp.vad import VoiceActivityDetector, create_vad

VAD_REFERENCE_DBFS = -30.0
VAD_MAX_GAIN_DB = 30.0
"""See :meth:`PartyVads.classify`."""

EARLY_VAD_QUIET_DBFS = -33.0
EARLY_VAD_QUIET_MIC_DBFS = -40.0
EARLY_VAD_GAIN_DB = 10.0
EARLY_VAD_LOUD_FRAMES = 25
"""Until a party's own level is known, the frames of a party fewer than 25 of whose frames have
reached -33 dBFS yet are given to the VAD 10 dB louder (see :meth:`PartyVads.classify`): enough
for a quiet voice's syllables to be heard and its level measured, not so much that the VAD
hears a step in the line's noise as speech (a recording's own hiss 10 dB over the room, raised
25 dB, was taken for speech). A party at the nominal -26 dBFS has that many frames above -33
dBFS within their first words, and is heard well enough without. A quiet one's loudest 20 ms
frames sit some 7-9 dB over their level: at -40 dBFS (the limit this had first), a customer at
-47 dBFS whose first stressed syllable reached it was heard unraised from then on, and the
VAD's fixed energy floors dropped half their words for the first seconds (talk-overs then ended
early or were missed on the development draws). The agent's mic keeps -40 dBFS
(:data:`EARLY_VAD_QUIET_MIC_DBFS`): before the echo estimator has found a laptop speaker's
leak, the customer's voice in the mic sits about where a quiet agent would, and raised it
became a second of the agent's speech time that the early-leak hold could no longer take
back.

Counted, not the loudest frame: an agent at -48.6 dBFS whose loudest frame reached -39 dBFS
in their first words was heard unraised from then on, and lost 6.6 of their first 7 s of
speech (no level, so no spurt, for 12 s; 1.6 s lost now). Their 25th frame over -40 dBFS came
88 s in. Agents at -30 to -22 dBFS on the development draws had theirs 0.5 s after they began
to speak (median; at most 2 s), customers at those levels their 25th over -33 dBFS 0.9 s
after (at most 2.7 s), and babble loud enough to give them ends the raise sooner, as it
should."""


class PartyVads:
    """One party's VADs, all of the configured engine and mode."""

    def __init__(self, settings: DetectorSettings,
                 quiet_dbfs: float = EARLY_VAD_QUIET_DBFS) -> None:
        self.quiet_dbfs = quiet_dbfs
        """Until a frame reaches this, the party counts as quiet (see :meth:`classify`)."""
        self.name = settings.vad
        self.mode = settings.vad_mode
        """Kept to show which mode the VADs were given (a VAD does not expose it)."""
        self.vad: VoiceActivityDetector = create_vad(settings.vad, settings.vad_mode)
        self.loud_frames = 0
        """The party's frames so far at ``quiet_dbfs`` or over (while their level is not
        known)."""
        self.early_vad: VoiceActivityDetector | None = None
        """A second VAD for the frames raised before the party's level is known (see
        :meth:`classify`)."""
        self.listen_vad: VoiceActivityDetector | None = None
        """Judges the frames just above a steady background (see :meth:`listen`)."""

    def configure(self, s: DetectorSettings) -> None:
        """Another engine starts from scratch; another mode applies to every VAD."""
        self.mode = s.vad_mode
        if s.vad != self.name:
            self.name = s.vad
            self.vad = create_vad(s.vad, s.vad_mode)
            self.early_vad = self.listen_vad = None
        self.vad.set_mode(s.vad_mode)
        for extra in (self.early_vad, self.listen_vad):
            if extra is not None:
                extra.set_mode(s.vad_mode)

    def listen(self, pcm16: np.ndarray, heard: np.ndarray, own: float | None,
               gain_db: float) -> None:
        """Clear the frames of ``heard`` that a VAD of their own judges not to be a voice,
        raised ``gain_db`` over the party's VAD input (:data:`dsp.party.LISTEN_VAD_GAIN_DB`).
        The party's VAD never
        hears these frames: it adapts to what it is given, and frames at the background's
        edge would change what it says of the frames that start and carry spurts."""
        if self.listen_vad is None:
            self.listen_vad = create_vad(self.name, self.mode)
        gain = gain_db + (0.0 if own is None else VAD_REFERENCE_DBFS - own)
        self.listen_vad.classify(raised(pcm16, min(VAD_MAX_GAIN_DB, gain)), heard)

    def classify(self, pcm16: np.ndarray, db: np.ndarray, speech: np.ndarray,
                  own: float | None, far_lagged: np.ndarray | None = None) -> None:
        """Clear the frames of ``speech`` the VAD judges not to be a voice; ``own`` is the
        party's level (:meth:`dsp.party.Party.voice_dbfs`); ``far_lagged`` (the agent's
        mic only) the far end's level at every delay the leak may have.

        WebRTC's VAD has fixed energy floors: measured on real speech under a -75 dBFS room,
        it flags 88 % of active frames at -30 dBFS, 56 % at -54 and 23 % at -60. The energy
        gates decide what stands out of the noise; the VAD only has to say "voice", so it is
        given the frames raised by the gain that brings the party's own level to
        :data:`VAD_REFERENCE_DBFS` (at most :data:`VAD_MAX_GAIN_DB`).

        Until that level is known (a second of speech frames), a party at -55 dBFS would
        give the VAD too few frames to measure it from, and go unheard (and never be told
        they are too quiet). So while fewer than :data:`EARLY_VAD_LOUD_FRAMES` of the party's
        frames have reached ``quiet_dbfs`` (:data:`EARLY_VAD_QUIET_DBFS`,
        :data:`EARLY_VAD_QUIET_MIC_DBFS` for the agent's mic), a second VAD judges their
        frames raised by :data:`EARLY_VAD_GAIN_DB`. The party's own VAD still hears those
        frames as they are (its verdict unused): it adapts to what it is given, and raised
        frames would leave it tuned to a louder room for the rest of the call.

        On the mic, a frame at ``quiet_dbfs`` or over that the far end, at some delay, is as
        loud as may be its leak: it ends the raise at once. Raised, the customer's voice
        leaking from laptop speakers became the agent's speech time before the echo
        estimator had found the leak.
        """
        if own is not None:
            self.vad.classify(raised(pcm16, min(VAD_MAX_GAIN_DB, VAD_REFERENCE_DBFS - own)),
                              speech)
            return
        if self.loud_frames >= EARLY_VAD_LOUD_FRAMES:  # loud: heard as they are
            self.vad.classify(pcm16, speech)
            return
        over = db >= self.quiet_dbfs
        loud = over.astype(np.int64)
        if far_lagged is not None and over.any():
            leak = over & (np.maximum.reduce(far_lagged, axis=1) >= db)
            loud[leak] = EARLY_VAD_LOUD_FRAMES
        np.cumsum(loud, out=loud)
        loud += self.loud_frames
        self.loud_frames = int(loud[-1])
        quiet = speech & (loud < EARLY_VAD_LOUD_FRAMES)
        if not quiet.any():
            self.vad.classify(pcm16, speech)
            return
        if self.early_vad is None:
            self.early_vad = create_vad(self.name, self.mode)
        early = quiet.copy()
        self.early_vad.classify(raised(pcm16, EARLY_VAD_GAIN_DB), early)
        self.vad.classify(pcm16, speech)
        speech[quiet] = early[quiet]


def raised(pcm16: np.ndarray, gain_db: float) -> np.ndarray:
    """``pcm16`` raised by ``gain_db`` (as it is for none)."""
    if gain_db <= 0.0:
        return pcm16
    return np.clip(pcm16 * 10.0 ** (gain_db / 20.0), -32768, 32767).astype(np.int16)
