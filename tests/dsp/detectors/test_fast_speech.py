"""Fast speech: judged only on a full window of speech, the threshold, the hysteresis."""

from __future__ import annotations

import dataclasses

import numpy as np

from dsp import FRAME_LEN
from dsp.detectors.pace import RATE_HYSTERESIS_SPS, FastSpeech
from dsp.events import Kind, Phase
from dsp.pace import SyllableCounter
from dsp.party import SEGMENT_FRAMES
from dsp.settings import DetectorSettings

S = DetectorSettings()
RATE = 16000


def _syllables(per_s: float, seconds: float) -> np.ndarray:
    """A voiced 150 Hz tone whose loudness peaks ``per_s`` times a second (a syllable train)."""
    t = np.arange(int(seconds * RATE)) / RATE
    envelope = 0.5 - 0.5 * np.cos(2 * np.pi * per_s * t)
    return (0.3 * envelope * np.sin(2 * np.pi * 150 * t)).astype(np.float32)


def _judge(det: FastSpeech, counter: SyllableCounter, x: np.ndarray, first: int) -> list:
    frames = x[: len(x) // FRAME_LEN * FRAME_LEN].reshape(-1, FRAME_LEN)
    out = []
    for k in range(0, len(frames), SEGMENT_FRAMES):
        seg = frames[k : k + SEGMENT_FRAMES]
        counter.update(seg, np.ones(len(seg), bool), first + k)
        out += det.judge(first + k + len(seg))
    return out


def test_fast_pace_is_reported_once_the_window_is_full_and_resolves_when_slower():
    counter = SyllableCounter()
    det = FastSpeech(counter, S)
    early = _judge(det, counter, _syllables(6.0, S.fast_speech_window_s - 2), 0)
    assert early == []  # not a full window of speech yet
    more = _judge(det, counter, _syllables(6.0, 4.0), 1400)
    assert [(e.kind, e.phase) for e in more] == [(Kind.FAST_SPEECH, Phase.BEGIN)]
    assert more[0].data["rate_sps"] > S.fast_speech_sps
    slow = _judge(det, counter, _syllables(3.0, S.fast_speech_window_s + 5), 1600)
    assert [(e.kind, e.phase) for e in slow] == [(Kind.FAST_SPEECH, Phase.END)]
    # The END's rate is the recovered one; the highest rate judged while it held is added.
    end = slow[0].data
    assert end["rate_sps"] <= S.fast_speech_sps - RATE_HYSTERESIS_SPS
    assert end["peak_rate_sps"] >= more[0].data["rate_sps"] > S.fast_speech_sps


def test_fast_pace_still_on_at_the_end_of_the_call_reports_its_rates():
    counter = SyllableCounter()
    det = FastSpeech(counter, S)
    begin = _judge(det, counter, _syllables(6.0, S.fast_speech_window_s + 3), 0)
    assert [e.phase for e in begin] == [Phase.BEGIN]
    (end,) = det.close(2000)
    assert end.data["rate_sps"] > S.fast_speech_sps
    assert end.data["peak_rate_sps"] >= begin[0].data["rate_sps"]


def test_a_comfortable_pace_is_not_fast():
    counter = SyllableCounter()
    det = FastSpeech(counter, S)
    assert _judge(det, counter, _syllables(4.0, 60.0), 0) == []
    assert S.fast_speech_sps - RATE_HYSTERESIS_SPS > 4.0 - 0.5


def test_reload_takes_the_new_threshold():
    counter = SyllableCounter()
    det = FastSpeech(counter, S)
    det.configure(dataclasses.replace(S, fast_speech_sps=7.0))
    assert _judge(det, counter, _syllables(6.0, 40.0), 0) == []
