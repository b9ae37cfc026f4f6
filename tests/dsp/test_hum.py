"""Mains hum removal (dsp.hum): found on hum, never on voices, the same however chunked, and
the agent's talk under it heard by the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from dsp import ANALYSIS_RATE
from dsp.events import Kind, Phase
from dsp.hum import DETECT, MEASURE_SECONDS, HumCanceller, lines, lines_many
from dsp.pipeline import Pipeline
from tests.speech import two_party_call


def hum(seconds: float, mains_hz: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """Mains hum as a ground loop makes it: the fundamental and decaying harmonics."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * ANALYSIS_RATE)) / ANALYSIS_RATE
    y = sum(10 ** (-5 * (k - 1) / 20) * np.sin(2 * np.pi * mains_hz * k * t + rng.uniform(0, 6))
            for k in range(1, 9))
    y /= np.sqrt(np.mean(y * y))
    return (y * 10 ** (dbfs / 20)).astype(np.float32)


def power_db(x: np.ndarray) -> float:
    return 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)))


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_hum_is_found_and_taken_out(mains_hz):
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(10 * ANALYSIS_RATE) * 10 ** (-75 / 20)).astype(np.float32)
    x = hum(10.0, mains_hz, -40.0) + noise
    h = HumCanceller()
    y = h.process(x)
    assert h.active
    last = slice(-3 * ANALYSIS_RATE, None)
    assert power_db(y[last]) < power_db(x[last]) - 25.0         # -40 dBFS of hum to under -65
    assert h.power_at(len(x)) == pytest.approx(10 ** (-40 / 10), rel=0.1)
    assert h.power_at(DETECT - 1) == 0.0                        # nothing before the first decision


def test_voices_in_a_quiet_room_are_left_alone():
    agent, customer = two_party_call(
        [("agent", "hts1", 0.5), ("agent", "kristoff", 6.0), ("agent", "mmt1", 12.0),
         ("customer", "cq_ref", 1.0)], seconds=20.0)
    for track in (agent, customer):
        h = HumCanceller()
        y = h.process(track)
        assert not h.active and h.power_at(len(track)) == 0.0
        assert np.array_equal(y, track)


def test_same_output_however_the_input_is_chunked():
    x = hum(4.0, 50.0, -45.0)
    x[20000:30000] += np.random.default_rng(2).standard_normal(10000).astype(np.float32) * 0.05
    whole = HumCanceller().process(x)
    h = HumCanceller()
    rng = np.random.default_rng(3)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 5000))
        parts.append(h.process(x[i : i + n]))
        i += n
    assert np.array_equal(np.concatenate(parts), whole)


def test_the_input_is_never_written_to_and_passes_as_is_without_hum():
    """Without hum a float32 chunk comes back as it is (no copy); a chunk in which hum is
    found at a decision point gets a copy with the hum taken out after it, and the caller's
    samples stay as they were."""
    noise = np.random.default_rng(4).standard_normal(5 * ANALYSIS_RATE) * 10 ** (-75 / 20)
    x = hum(5.0, 50.0, -40.0) + noise.astype(np.float32)
    h = HumCanceller()
    first = x[: DETECT // 2]
    assert h.process(first) is first and not h.active
    chunk = x[DETECT // 2 :]
    before = chunk.copy()
    y = h.process(chunk)
    assert h.active and y is not chunk and y.dtype == np.float32
    assert np.array_equal(chunk, before)
    assert np.array_equal(y[: DETECT // 2], before[: DETECT // 2])  # before the decision
    assert power_db(y[-ANALYSIS_RATE:]) < power_db(before[-ANALYSIS_RATE:]) - 20.0


def test_lines_of_many_seconds_are_each_seconds_lines_bit_for_bit():
    """The batched measurement equals the one-second one exactly, in batches of any size:
    noise at any level, 50 and 60 Hz hum, hum that comes and goes, silence, voices."""
    rng = np.random.default_rng(5)
    n = 12 * DETECT
    agent, _ = two_party_call([("agent", "hts1", 0.5), ("agent", "kristoff", 6.0)],
                              seconds=12.0)
    signals = [rng.standard_normal(n) * 10 ** rng.uniform(-6, -1),
               hum(12.0, 50.0, -40.0) + rng.standard_normal(n) * 1e-4,
               hum(12.0, 60.0, -50.0) * (np.arange(n) % (3 * DETECT) < DETECT),
               np.zeros(n), agent[:n].astype(np.float64)]
    for x in signals:
        rows = np.asarray(x, np.float64).reshape(-1, DETECT)
        one = [lines(r) for r in rows]
        for size in (1, 5, len(rows)):
            got: list[tuple[float, float]] = []
            for i in range(0, len(rows), size):
                above, power = lines_many(rows[i : i + size])
                got += zip(above.tolist(), power.tolist(), strict=True)
            assert got == one


def test_a_long_chunk_gives_what_short_ones_give():
    """Chunks longer than a batch of measured seconds, shorter ones and single samples:
    the same output, hum coming and going."""
    seconds = 2 * MEASURE_SECONDS + 7
    x = hum(seconds, 50.0, -40.0)
    x[: 5 * DETECT] = 0.0
    x[20 * DETECT : 26 * DETECT] = 0.0
    x += (np.random.default_rng(6).standard_normal(x.size) * 1e-4).astype(np.float32)
    whole = HumCanceller().process(x)
    h = HumCanceller()
    assert np.array_equal(np.concatenate([h.process(x[:1]), h.process(x[1 : 3 * DETECT + 5]),
                                          h.process(x[3 * DETECT + 5 :])]), whole)
    h = HumCanceller()
    parts = [h.process(x[i : i + DETECT // 3]) for i in range(0, x.size, DETECT // 3)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert not np.array_equal(whole, x)  # hum was taken out


def test_a_loud_phrase_leaves_no_echo_in_the_pause_after_it():
    """Under -45 dBFS hum, a -26 dBFS phrase must not leave its imprint in the hum template:
    subtracted from the pause that follows, it sounded like the phrase's echo (-52 dBFS, 23 dB
    over the room) and was counted as speech."""
    import dsp.hum
    from tests.speech import place, voice

    rng = np.random.default_rng(2)
    n = 16 * ANALYSIS_RATE
    phrase = np.zeros(n, np.float32)
    place(phrase, voice("hts1"), 5.0)
    end = int(np.flatnonzero(np.abs(phrase) > 1e-3)[-1])
    room = (rng.standard_normal(n) * 10 ** (-75 / 20)).astype(np.float32)
    x = phrase + hum(16.0, 50.0, -45.0) + room
    after = slice(end + ANALYSIS_RATE // 10, end + 21 * ANALYSIS_RATE // 10)
    before = slice(5 * ANALYSIS_RATE // 2, 9 * ANALYSIS_RATE // 2)
    y = HumCanceller().process(x)
    assert power_db(y[before]) < -72.0
    assert power_db(y[after]) < -64.0                            # measured -67.7
    clip = dsp.hum.CLIP
    try:
        dsp.hum.CLIP = float("inf")
        assert power_db(HumCanceller().process(x)[after]) > -56.0  # the echo: -51.9
    finally:
        dsp.hum.CLIP = clip


def test_the_agent_talking_under_loud_hum_is_heard():
    """An agent whose voice is no louder than the hum on their mic: the talk-over is found
    with its initiator, no dead air is reported while they talk, and the noise report still
    counts the hum."""
    agent, customer = two_party_call(
        [("customer", "cq_ref", 1.0), ("agent", "mmt1", 4.0), ("agent", "kristoff", 12.0)],
        seconds=20.0)
    agent *= np.float32(10 ** (-20 / 20))                       # voice about -46 dBFS
    agent += hum(20.0, 50.0, -45.0)
    p = Pipeline(agent_rate=ANALYSIS_RATE, customer_rate=ANALYSIS_RATE)
    events = p.push(agent, customer) + p.finish()
    ended = [e for e in events if e.phase is Phase.END]
    talk = [e for e in ended if e.kind is Kind.TALK_OVER]
    assert [e.data["initiator"] for e in talk] == ["agent"], ended
    assert not [e for e in ended if e.kind is Kind.SILENCE], ended
    assert p.stats.agent.speech_s > 5.0
    assert p.stats.agent.noise_floor_dbfs == pytest.approx(-45.0, abs=2.0)


def test_the_pipeline_gives_the_same_events_under_hum_however_chunked():
    agent, customer = two_party_call(
        [("customer", "cq_ref", 1.0), ("agent", "mmt1", 4.0)], seconds=12.0)
    agent *= np.float32(10 ** (-20 / 20))
    agent += hum(12.0, 60.0, -45.0)

    def events(block: int) -> list:
        p = Pipeline(agent_rate=ANALYSIS_RATE, customer_rate=ANALYSIS_RATE)
        out = []
        for i in range(0, len(agent), block):
            out += p.push(agent[i : i + block], customer[i : i + block])
        return out + p.finish()

    whole = events(len(agent))
    assert any(e.kind is Kind.TALK_OVER for e in whole)
    for block in (160, 4801, 16000):
        assert events(block) == whole
