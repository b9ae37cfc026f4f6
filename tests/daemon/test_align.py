"""Clock-skew compensation: an hour of two streams 200 ppm apart stays aligned.

No sound server: the two "devices" are simulated sample clocks with jittery callback
timestamps, fed through the aligner much faster than real time.
"""

from __future__ import annotations

import numpy as np

from dsp.align import Aligner, StreamClock
from dsp.events import Kind, Phase
from dsp.pipeline import Pipeline
from tests.speech import two_party_call

RATE = 16000
BLOCK = 1600  # 100 ms device blocks
HOUR_S = 3600.0
SEG_START_S = 3540.0  # the last minute carries a conversation with a talk-over
SEG_S = 60.0
TURNS = [("customer", "hts2", 2.0), ("agent", "kristoff", 4.0), ("customer", "cq_ref", 20.0),
         ("agent", "hts1", 22.0), ("agent", "mmt1", 40.0)]


class Device:
    """A capture device whose clock runs ``ppm`` fast, started at ``start_s`` host time."""

    def __init__(self, ppm: float, start_s: float, content: np.ndarray, seed: int) -> None:
        self.rate = RATE * (1 + ppm * 1e-6)
        self.start_s = start_s
        self.content = content  # what the device hears during the last minute, on host time
        self.n = 0
        self.rng = np.random.default_rng(seed)

    def block_due(self, now: float) -> bool:
        return self.start_s + (self.n + BLOCK) / self.rate <= now

    def read(self) -> tuple[int, float, np.ndarray]:
        n0 = self.n
        t_true = self.start_s + n0 / self.rate + np.arange(BLOCK) / self.rate
        x = np.zeros(BLOCK, np.float32)
        idx = np.round((t_true - SEG_START_S) * RATE).astype(np.int64)
        ok = (idx >= 0) & (idx < len(self.content))
        if ok.any():
            x[ok] = self.content[idx[ok]]
        self.n += BLOCK
        jitter = float(self.rng.uniform(0.0, 0.004))  # callback timestamps are a few ms noisy
        return n0, float(t_true[0]) + jitter, x


def first_talk_over_starts(agent: np.ndarray, customer: np.ndarray) -> list[float]:
    p = Pipeline(agent_rate=RATE, customer_rate=RATE)
    events = p.push(agent, customer) + p.finish()
    return [e.start_s for e in events if e.kind is Kind.TALK_OVER and e.phase is Phase.BEGIN]


def test_200ppm_skew_over_an_hour_keeps_talk_overs_in_place():
    agent_seg, customer_seg = two_party_call(TURNS, SEG_S, seed=3)
    expected = first_talk_over_starts(agent_seg, customer_seg)
    assert len(expected) >= 2, expected

    mic = Device(0.0, 0.0, agent_seg, seed=1)
    far = Device(200.0, 0.037, customer_seg, seed=2)  # far end starts 37 ms later, runs fast
    aligner = Aligner(RATE, RATE, window_s=60.0)
    out = {"agent": [], "customer": []}
    emitted = {"agent": 0, "customer": 0}
    now = 0.0
    while now < HOUR_S + 0.5:
        now += 0.1
        for name, dev in (("agent", mic), ("customer", far)):
            s = aligner.streams[name]
            while dev.block_due(now):
                n0, t, x = dev.read()
                s.add_timestamp(n0, t)
                s.add_samples(x)
        got = aligner.pull({"agent": True, "customer": True})
        if got is None:
            continue
        for name, x in zip(("agent", "customer"), got, strict=True):
            k0 = emitted[name]
            emitted[name] += len(x)
            if emitted[name] > SEG_START_S * RATE:  # keep only the last minute
                out[name].append(x[max(0, int(SEG_START_S * RATE) - k0):])

    assert aligner.t0 is not None and abs(aligner.t0) < 0.005
    agent = np.concatenate(out["agent"])[: int(SEG_S * RATE)]
    customer = np.concatenate(out["customer"])[: int(SEG_S * RATE)]
    assert len(agent) == len(customer) == int(SEG_S * RATE)
    skew = aligner.skew_ppm()
    assert abs(skew["customer"] - 200.0) < 20.0, skew
    assert abs(skew["agent"]) < 20.0, skew
    # the far end's sample count drifted by 0.72 s over the hour; pairing by counts would
    # move every customer turn by that much
    assert far.n - mic.n > 0.5 * RATE
    # sample-exact check: the customer's audio sits where the host clock put it
    lag = np.argmax(np.correlate(customer[RATE:RATE * 10], customer_seg[RATE:RATE * 9], "valid"))
    assert abs(int(lag)) <= RATE * 0.005, f"customer stream off by {lag / RATE * 1000:.1f} ms"
    got = first_talk_over_starts(agent, customer)
    assert len(got) == len(expected), (got, expected)
    for g, e in zip(got, expected, strict=True):
        assert abs(g - e) <= 0.1, (got, expected)


def test_one_late_capture_time_does_not_place_the_first_second():
    """A reader that times packets by their arrival can stamp the first one a scheduler's
    delay late. By half a second (six points) the stream sits where the other points put it,
    not 10 ms late: every young point refits the line, and the late one does not set its offset."""
    clock = StreamClock(RATE, 60.0)
    clock.add(0, 0.010)  # the first capture time, 10 ms late
    for k in range(1, 6):
        clock.add(k * BLOCK, k * BLOCK / RATE)
    assert abs(clock.time_of(0)) < 0.001, clock.time_of(0)


def test_capture_times_late_on_a_loaded_machine_do_not_move_the_stream():
    """Arrival-timed capture times are never early, and on a busy machine most of them are a
    few ms late. The stream sits where its earliest points put it: within a millisecond, where
    the points' median put it 7.5 ms late (one party against the other by that much)."""
    rng = np.random.default_rng(5)
    clock = StreamClock(RATE, 60.0)
    for k in range(120):
        late = float(rng.uniform(0.003, 0.015)) if rng.random() < 0.7 else 0.0
        clock.add(k * BLOCK, k * BLOCK / RATE + late)
    assert abs(clock.time_of(0)) < 0.001, clock.time_of(0)
    assert abs(clock.time_of(120 * BLOCK) - 120 * BLOCK / RATE) < 0.001
