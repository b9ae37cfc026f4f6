"""Dead air: the ``silence_min_s`` boundary and reload."""

from __future__ import annotations

import dataclasses

from dsp.activity import TalkSpurts
from dsp.detectors.dead_air import DeadAir
from dsp.events import Kind, Phase
from dsp.party import frames
from dsp.settings import DetectorSettings

S = DetectorSettings()


def _run(gap: int, settings: DetectorSettings = S, det: DeadAir | None = None) -> list:
    """Both talk for frames 0-9, then neither for ``gap`` frames, then the agent again."""
    det = det or DeadAir(settings)
    hang = frames(settings.vad_hangover_s)
    a, c = TalkSpurts(1, hang), TalkSpurts(1, hang)
    events = []
    for i in range(10 + gap + 50):
        speech = i < 10 or i >= 10 + gap
        ac, cc = a.step(i, speech), c.step(i, i < 10)
        if a.active or c.active:
            det.any_speech = True
            if not det.pending:
                continue
        if det.any_speech:
            ev = det.step(i, a, c, ac, cc)
            if ev is not None:
                events.append(ev)
    return events + det.close(10 + gap + 50)


def test_gap_of_silence_min_is_reported_one_frame_under_is_not():
    # Counted from the last speech frame, not from the end of the hangover.
    n = frames(S.silence_min_s)
    events = _run(n)
    assert [(e.kind, e.phase) for e in events] == [(Kind.SILENCE, Phase.BEGIN),
                                                    (Kind.SILENCE, Phase.END)]
    assert events[0].start == 10 * 320 and events[1].end == (10 + n) * 320
    # Confirmed the frame the threshold is crossed.
    assert events[0].end == (10 + n) * 320
    assert _run(n - 1) == []


def test_nothing_before_the_first_word():
    det = DeadAir(S)
    assert not det.any_speech
    det.start_call(0)
    assert det.close(0) == []


def test_reload_keeps_the_pending_silence_and_takes_the_new_duration():
    longer = dataclasses.replace(S, silence_min_s=8.0)
    det = DeadAir(S)
    det.configure(longer)
    assert _run(frames(5.0), det=det) == []
    assert len(_run(frames(8.0), longer)) == 2


def test_an_onset_under_way_at_the_threshold_is_not_confirmed_as_dead_air():
    """The agent's next words begin 2 frames before the threshold and take 5 frames to start
    a spurt, which is dated from their first frame: the silence was shorter than its
    threshold, and no dead air is reported (it was, with duration_s under threshold_s).
    Words beginning at the threshold still leave a dead air of exactly it."""
    n = frames(S.silence_min_s)
    hang = frames(S.vad_hangover_s)

    def run(words_at: int) -> list:
        det = DeadAir(S)
        a, c = TalkSpurts(5, hang), TalkSpurts(5, hang)
        events = []
        for i in range(10 + n + 50):
            ac, cc = a.step(i, i < 10 or i >= words_at), c.step(i, i < 10)
            if a.active or c.active:
                det.any_speech = True
                if not det.pending:
                    continue
            ev = det.step(i, a, c, ac, cc) if det.any_speech else None
            if ev is not None:
                events.append(ev)
        return events

    assert run(10 + n - 2) == []
    _begin, end = run(10 + n)
    assert end.data["duration_s"] == S.silence_min_s
