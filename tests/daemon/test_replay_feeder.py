"""Live replay on real files: every sample of both sides reaches the rings, in order, with
the capture timestamps a device would give, at the asked pace, and never dropped."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from daemon.audiofile import AudioFileError, CallSource
from daemon.epoch import StreamReader
from daemon.replay import ReplayFeeder, ReplayStream

RATE = 16000


def stereo_call(path: Path, seconds: float, rate: int = RATE) -> np.ndarray:
    """A stereo PCM-16 call whose two sides differ; returns what the file holds as float32."""
    n = int(seconds * rate)
    rng = np.random.default_rng(11)
    x = np.stack([0.1 * rng.standard_normal(n), 0.05 * np.sin(np.arange(n) * 0.03)], axis=1)
    sf.write(path, x, rate, subtype="PCM_16")
    return sf.read(path, dtype="float32")[0]


def drain(stream: ReplayStream, reader: StreamReader, out: list[np.ndarray],
          stamps: list[tuple[int, float]]) -> None:
    stamps.extend(reader.read_timestamps())
    x = reader.read_samples()
    if len(x):
        out.append(x)


def run_to_end(feeder: ReplayFeeder, timeout_s: float = 20.0):
    """Start the feeder and read both rings as the processing loop would, until it is done."""
    readers = {s.name: StreamReader() for s in (feeder.agent, feeder.customer)}
    for s in (feeder.agent, feeder.customer):
        readers[s.name].switch(s.epoch)
    got: dict[str, list[np.ndarray]] = {"agent": [], "customer": []}
    stamps: dict[str, list[tuple[int, float]]] = {"agent": [], "customer": []}
    feeder.start()
    deadline = time.monotonic() + timeout_s
    while not feeder.done.is_set():
        assert time.monotonic() < deadline, "the replay did not finish"
        for s in (feeder.agent, feeder.customer):
            drain(s, readers[s.name], got[s.name], stamps[s.name])
        time.sleep(0.002)
    for s in (feeder.agent, feeder.customer):
        drain(s, readers[s.name], got[s.name], stamps[s.name])
    feeder.stop()
    samples = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in got.items()}
    return samples, stamps


def test_every_sample_of_both_sides_arrives_in_order_with_its_timestamp(tmp_path):
    call = tmp_path / "call.wav"
    audio = stereo_call(call, 3.0)
    feeder = ReplayFeeder(CallSource(str(call), str(call)), speed=1000.0, block_s=0.02,
                          ring_s=5.0)
    assert (feeder.agent.rate, feeder.customer.rate, feeder.duration_s) == (RATE, RATE, 3.0)
    assert feeder.agent.up and feeder.agent.label == str(call)
    samples, stamps = run_to_end(feeder)
    assert feeder.error is None and feeder.crash is None
    np.testing.assert_array_equal(samples["agent"], audio[:, 0])
    np.testing.assert_array_equal(samples["customer"], audio[:, 1])
    for side in ("agent", "customer"):
        n = [i for i, _ in stamps[side]]
        assert n == list(range(0, len(audio), 320)), "one stamp per 20 ms block, in order"
        assert all(t == i / RATE for i, t in stamps[side]), "file time, as a device clock"


def test_a_small_ring_makes_the_reader_wait_instead_of_dropping(tmp_path):
    call = tmp_path / "call.wav"
    audio = stereo_call(call, 4.0)
    feeder = ReplayFeeder(CallSource(str(call), str(call)), speed=1000.0, block_s=0.02,
                          ring_s=0.1)             # 4096 frames: the file is 16 times that
    samples, _ = run_to_end(feeder)
    assert feeder.agent.epoch.ring.overruns == feeder.customer.epoch.ring.overruns == 0
    np.testing.assert_array_equal(samples["agent"], audio[:, 0])
    np.testing.assert_array_equal(samples["customer"], audio[:, 1])


def test_two_mono_files_at_different_rates_keep_their_own_rates(tmp_path):
    agent, customer = tmp_path / "agent.wav", tmp_path / "customer.flac"
    sf.write(agent, np.full(8000 * 2, 0.25), 8000, subtype="PCM_16")
    sf.write(customer, np.full(48000 * 2, -0.5), 48000, subtype="PCM_16")
    feeder = ReplayFeeder(CallSource(str(agent), str(customer), 0, 0), speed=1000.0,
                          block_s=0.02, ring_s=5.0)
    assert (feeder.agent.rate, feeder.customer.rate) == (8000, 48000)
    samples, stamps = run_to_end(feeder)
    assert len(samples["agent"]) == 16000 and len(samples["customer"]) == 96000
    assert np.all(samples["agent"] == 0.25) and np.all(samples["customer"] == -0.5)
    assert stamps["customer"][1] == (960, 0.02) and stamps["agent"][1] == (160, 0.02)


@pytest.mark.parametrize("speed", [2.0, 8.0])
def test_the_replay_keeps_the_asked_pace(tmp_path, speed):
    call = tmp_path / "call.wav"
    stereo_call(call, 2.0)
    feeder = ReplayFeeder(CallSource(str(call), str(call)), speed=speed, block_s=0.02,
                          ring_s=5.0)
    t0 = time.monotonic()
    run_to_end(feeder)
    took = time.monotonic() - t0
    expected = 2.0 / speed
    assert expected - 0.02 / speed <= took < expected + 0.5, took


def test_stop_ends_a_replay_stuck_on_a_full_ring_at_once(tmp_path):
    call = tmp_path / "call.wav"
    stereo_call(call, 5.0)
    feeder = ReplayFeeder(CallSource(str(call), str(call)), speed=1000.0, block_s=0.02,
                          ring_s=0.1)
    feeder.start()                                  # nobody reads: the ring fills
    deadline = time.monotonic() + 5
    ring = feeder.agent.epoch.ring
    while ring.available() < ring.capacity - 320:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    t0 = time.monotonic()
    feeder.stop()
    assert time.monotonic() - t0 < 0.5
    assert feeder.done.is_set() and feeder.error is None and feeder.crash is None
    assert not any(t.name == "replay" and t.is_alive() for t in threading.enumerate())


def test_an_all_nan_recording_is_an_error_once_it_has_been_read(tmp_path):
    call = tmp_path / "nan.wav"
    sf.write(call, np.full((RATE, 2), np.nan, np.float32), RATE, subtype="FLOAT")
    feeder = ReplayFeeder(CallSource(str(call), str(call)), speed=1000.0, block_s=0.02,
                          ring_s=5.0)
    run_to_end(feeder)
    assert feeder.crash is None
    assert feeder.error is not None and "nan.wav" in feeder.error and "NaN" in feeder.error


def test_a_file_that_is_no_audio_is_refused_before_any_thread_starts(tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("not audio at all")
    before = threading.active_count()
    with pytest.raises(AudioFileError, match=r"notes\.wav"):
        ReplayFeeder(CallSource(str(bogus), str(bogus)), speed=1.0, block_s=0.02, ring_s=1.0)
    assert threading.active_count() == before
