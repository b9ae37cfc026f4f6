"""The judgments made once per 1-second segment for one party: its noise (measured while it
is silent), its speech level and its clipping, from what the segment's frames gathered in
the party's state (:class:`dsp.party.Party`). The pipeline calls :meth:`PartyJudges.end_segment`
at every segment boundary, which lies at a fixed frame index whatever the chunking."""

from __future__ import annotations

import numpy as np

from dsp import FRAME_LEN
from dsp.block import median
from dsp.detectors.clipping import Clipping
from dsp.detectors.levels import Levels
from dsp.detectors.noise import Noise
from dsp.events import Event
from dsp.levels import power_dbfs
from dsp.party import SEGMENT_FRAMES, Party
from dsp.settings import DetectorSettings

QUIET_ABOVE_FLOOR_MAX_DB = 20.0
"""A mostly-silent segment is judged for noise only if its median silent frame is within this
of the minimum floor (babble sits 10-15 dB above its dips; speech the gates missed in a quiet
room, 30-40 dB)."""

IDLE_MIN_FRAMES = 40
"""A segment the party spent outside its spurts for 0.8 s or more is judged for noise by
those frames even when the speech gate passed most of them: voices around the party. Less
(half a segment, say) is usually the party's own speech around a spurt that ended or
started inside the segment, and its median is their voice."""

FLOOR_STAT_ABOVE_MIN_MAX_DB = 12.0
"""Stricter for the call's reported noise floor, which one stray segment would bias."""


class PartyJudges:
    """The detectors that judge one party once per segment."""

    def __init__(self, party: Party, settings: DetectorSettings) -> None:
        self.party = party
        self.noise = Noise(party, settings)
        self.levels = Levels(party, settings)
        self.clipping = Clipping(party.stream, settings)

    def configure(self, settings: DetectorSettings) -> None:
        self.noise.configure(settings)
        self.levels.configure(settings)
        self.clipping.configure(settings)

    def end_segment(self, end: int, call_start: int) -> list[Event]:
        """The segment ending at frame ``end``: fold its levels into the noise estimates,
        judge noise, level and clipping, and clear what it gathered."""
        party = self.party
        events: list[Event] = []
        party.noise_all.add_segment(np.concatenate(party.seg_levels))
        quiet, idle = party.seg_quiet, party.seg_idle
        if quiet.count:
            party.noise.add_segment(np.concatenate(quiet.levels))
        if quiet.count * 2 >= SEGMENT_FRAMES:
            # Noise is judged, as headset vendors do, while the party is silent: in segments
            # that are mostly silence, by the median silent frame (robust to the odd word
            # onset or click that slips past the spurt state, which would dominate a power
            # mean). A "silence" far above the quietest frames was speech the gates missed,
            # not noise.
            quiet_db = median(np.concatenate(quiet.levels))
            above = quiet_db - party.floor.floor_dbfs
            # Hum taken out before analysis is still noise in the room's report.
            hum = party.hum_power(end * FRAME_LEN)
            if hum > 0.0:
                quiet_db = power_dbfs(10.0 ** (quiet_db / 10.0) + hum)
            if above <= FLOOR_STAT_ABOVE_MIN_MAX_DB:
                party.noise.add_quiet(10.0 ** (quiet_db / 10.0))
            if above <= QUIET_ABOVE_FLOOR_MAX_DB:
                events += self.noise.judge(quiet.first, quiet.count, quiet_db, end)
        elif idle.count >= IDLE_MIN_FRAMES:
            # The party did not talk, yet most of its frames passed the speech gate: voices
            # around it (office babble that began after the background was measured, which
            # the gate then keeps taking for speech; its frames never reach the quiet
            # measures). Judged by the median frame outside the party's spurts: the odd
            # word that did not start a spurt is a minority, a room full of voices is not.
            idle_db = median(np.concatenate(idle.levels))
            hum = party.hum_power(end * FRAME_LEN)
            if hum > 0.0:
                idle_db = power_dbfs(10.0 ** (idle_db / 10.0) + hum)
            events += self.noise.judge(idle.first, idle.count, idle_db, end)
        party.floor.end_segment()
        party.seg_levels.clear()
        if party.seg_speech:
            party.add_speech_energy(np.concatenate(party.seg_speech))
            events += self.levels.judge(end, call_start)
        events += self.clipping.judge(end - SEGMENT_FRAMES, end, party.seg_clipped)
        party.seg_speech.clear()
        quiet.clear()
        idle.clear()
        party.seg_clipped = 0
        return events

    def close(self, frame: int) -> list[Event]:
        # The order of the END events at a call's end: noise, too quiet, too loud, clipping.
        return self.noise.close(frame) + self.levels.close(frame) + self.clipping.close(frame)
