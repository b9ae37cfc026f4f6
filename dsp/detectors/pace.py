"""Fast speech: the agent's speaking rate over the last ``fast_speech_window_s`` of their speech
above ``fast_speech_sps`` syllables per second.

Comfortable English is 120-160 words per minute, about 3.3-4.5 syllables per second; under
pressure agents speed up (DESIGN.md §5). The rate is the articulation rate of
:class:`dsp.pace.SyllableCounter` (pauses left out), so a fast talker with long pauses is
still fast. Judged once per segment, and only once the window holds that much speech.
"""

from __future__ import annotations

from dsp.condition import BEGIN, END, Condition
from dsp.detectors import carry, event
from dsp.events import Event, Kind, Phase, Stream
from dsp.pace import SyllableCounter
from dsp.party import SEGMENT_FRAMES
from dsp.settings import DetectorSettings

RATE_HYSTERESIS_SPS = 0.3
"""Fast speech resolves once the rate is this far back under the threshold."""


class FastSpeech:
    """The agent's pace against the threshold, from the agent's syllable counter."""

    def __init__(self, counter: SyllableCounter, settings: DetectorSettings) -> None:
        self.counter = counter
        self.cond: Condition | None = None
        self.rate: float | None = None
        """The rate at the last judgment."""
        self.peak_rate = 0.0
        """The highest rate judged since the condition began."""
        self.configure(settings)

    def configure(self, s: DetectorSettings) -> None:
        self.threshold_sps = s.fast_speech_sps
        self.window_s = s.fast_speech_window_s
        self.cond = carry(self.cond, 1, 1)

    def judge(self, end: int) -> list[Event]:
        """End of a segment."""
        cond = self.cond
        assert cond is not None
        if self.counter.speech_s < self.window_s:
            return []
        rate = self.counter.rate_sps(self.window_s)
        if rate is None:
            return []
        self.rate = rate
        was_active = cond.active
        r = cond.update_many(end - SEGMENT_FRAMES, SEGMENT_FRAMES, rate > self.threshold_sps,
                             rate <= self.threshold_sps - RATE_HYSTERESIS_SPS)
        if r is BEGIN:
            self.peak_rate = rate
            return [event(Kind.FAST_SPEECH, Phase.BEGIN, Stream.AGENT, cond.start, end,
                          rate_sps=rate, threshold_sps=self.threshold_sps)]
        if was_active:
            self.peak_rate = max(self.peak_rate, rate)
        if r is END:
            return [self._end(cond.start, cond.end)]
        return []

    def close(self, frame: int) -> list[Event]:
        cond = self.cond
        assert cond is not None
        if not cond.close(frame):
            return []
        return [self._end(cond.start, cond.end)]

    def _end(self, start: int, end: int) -> Event:
        """The END: the rate at the last judgment (back under the threshold when the agent
        slowed down; still over it when the call ended first) and, added to the contract,
        the highest rate judged while it held."""
        data: dict[str, float] = {}
        if self.rate is not None:
            data["rate_sps"] = self.rate
        return event(Kind.FAST_SPEECH, Phase.END, Stream.AGENT, start, end,
                     **data, threshold_sps=self.threshold_sps, peak_rate_sps=self.peak_rate)
