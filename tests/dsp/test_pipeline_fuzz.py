"""Property: whatever samples arrive - finite or not, any PCM type, any rate, any chunking -
``Pipeline.push``/``finish`` give events and never raise.

The live daemon feeds the pipeline whatever a driver delivered and ``analyze`` whatever a
file held; an exception there stops the processing loop or a whole batch, and a NaN that got
through would end up in a report as bare ``NaN`` (not JSON). So every event and every
statistic must also serialise as strict JSON. The budget is fixed (derandomised, no deadline)
so the run takes seconds in CI.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsp import ANALYSIS_RATE
from dsp.events import Event, Phase
from dsp.pipeline import Pipeline

BUDGET = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

RATES = (8000, 11025, 16000, 22050, 44100, 48000)
DTYPES = (np.float32, np.float64, np.int16, np.int32, np.int8, np.uint8)
SPECIAL = (math.nan, math.inf, -math.inf, 1e30, -1e30, 3.4e38, 1.0, -1.0, 0.0, 5e-324,
           1.4e-45, -0.0)
"""Values a broken driver or a corrupt float file delivers (float streams only)."""

MAX_S = 3.0


@st.composite
def stream(draw: st.DrawFn, rate: int, duration_s: float) -> np.ndarray:
    """A signal of about ``duration_s``: a base (silence, noise, tone, full-scale square, DC)
    with runs of special values written over it, in one PCM type."""
    n = max(0, round(duration_s * rate) + draw(st.integers(-rate // 10, rate // 10)))
    t = np.arange(n) / rate
    base = draw(st.sampled_from(("silence", "noise", "tone", "square", "dc")))
    amp = draw(st.floats(0.0, 4.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if base == "silence":
        x = np.zeros(n)
    elif base == "noise":
        x = amp * rng.standard_normal(n)
    elif base == "tone":
        x = amp * np.sin(2 * np.pi * draw(st.floats(20.0, rate / 2)) * t)
    elif base == "square":
        x = np.where(np.sin(2 * np.pi * 300 * t) >= 0, 1.0, -1.0)
    else:
        x = np.full(n, amp - 2.0)
    dtype = draw(st.sampled_from(DTYPES))
    if np.dtype(dtype).kind == "f":
        x = x.astype(dtype)
        for _ in range(draw(st.integers(0, 4))):
            if n == 0:
                break
            at = draw(st.integers(0, n - 1))
            run = draw(st.integers(1, max(1, n - at)))
            with np.errstate(over="ignore"):
                x[at:at + run] = dtype(draw(st.sampled_from(SPECIAL)))
        return x
    info = np.iinfo(dtype)
    y = np.clip(np.nan_to_num(x) * (info.max + 1), info.min, info.max)
    if dtype == np.uint8:
        y = np.clip(y + 128, 0, 255)
    return y.astype(dtype)


@st.composite
def calls(draw: st.DrawFn) -> tuple[int, int, np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Both parties' streams at their own rates, and chunk sizes to push them in."""
    ra, rc = draw(st.sampled_from(RATES)), draw(st.sampled_from(RATES))
    # Mostly long enough for every detector's first second (and the pipeline's priming),
    # sometimes only a few samples.
    duration_s = draw(st.one_of(st.floats(0.0, 0.05), st.floats(0.5, MAX_S)))
    agent, customer = draw(stream(ra, duration_s)), draw(stream(rc, duration_s))
    chunks = draw(st.lists(st.tuples(st.integers(0, 2 * ra), st.integers(0, 2 * rc)),
                           max_size=6))
    return ra, rc, agent, customer, chunks


def _check(events: list[Event], position: int) -> None:
    for e in events:
        assert isinstance(e, Event)
        assert 0 <= e.start <= e.end <= position, e
        assert e.phase in (Phase.BEGIN, Phase.END)
        json.dumps(e.to_json(), allow_nan=False)


@BUDGET
@given(calls())
def test_any_samples_give_events_and_nothing_raises(call) -> None:
    ra, rc, agent, customer, chunks = call
    p = Pipeline(agent_rate=ra, customer_rate=rc)
    ia = ic = 0
    for na, nc in chunks:
        a, c = agent[ia:ia + na], customer[ic:ic + nc]
        ia, ic = ia + na, ic + nc
        _check(p.push(a if len(a) else None, c if len(c) else None), p.position)
    _check(p.push(agent[ia:], customer[ic:]), p.position)
    _check(p.finish(), p.position)
    for stats in (p.stats, p.totals):
        json.dumps(dataclasses.asdict(stats), allow_nan=False)
    # both streams are processed to the shorter one's end (within the resamplers' rounding)
    shorter = min(len(agent) / ra, len(customer) / rc)
    assert p.position / ANALYSIS_RATE <= shorter + 0.03


@BUDGET
@given(calls())
def test_non_finite_samples_count_as_their_clipped_values(call) -> None:
    """NaN is silence and an infinity is full scale: the events are those of the cleaned
    signal, so one bad sample cannot change what the rest of the call shows."""
    ra, rc, agent, customer, _ = call

    def clean(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind != "f":
            return x
        with np.errstate(over="ignore"):
            y = x.astype(np.float32)
        return np.clip(np.nan_to_num(y, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)

    raw = Pipeline(agent_rate=ra, customer_rate=rc)
    cleaned = Pipeline(agent_rate=ra, customer_rate=rc)
    assert raw.push(agent, customer) + raw.finish() \
        == cleaned.push(clean(agent), clean(customer)) + cleaned.finish()
