"""The libpulse capture backend on a real PulseAudio server: every device fault of the matrix
(stream killed, source unloaded, source suspended, server restarted) is logged as
``device_lost`` / ``device_restored`` with a reason in plain words, the daemon keeps the call
going, and nothing from the sound libraries reaches stderr."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.integration.daemon_run import DaemonProcess
from tests.integration.pulse import PulseServer, virtual_headset  # noqa: F401
from tests.integration.test_faults import flowing, lost_and_restored, settled

pytestmark = pytest.mark.integration

CONFIG = """
[capture]
backend = "pulse"
mic_device = "headset_mic"
far_end_device = "speaker_monitor"
auto_calls = false
retry_min_s = 0.1
retry_max_s = 0.5
stall_timeout_s = 0.5
"""


def test_pulse_backend_records_from_the_named_sources(virtual_headset: PulseServer,  # noqa: F811
                                                      tmp_path):
    """The streams are libpulse record streams on exactly the configured sources, in large
    fragments (one block each), tagged so the server shows which is which."""
    d = DaemonProcess(tmp_path, CONFIG, env=virtual_headset.full_env())
    try:
        started = d.event("started")
        assert started["backend"] == "pulse"
        assert started["devices"] == {"agent": "headset_mic",
                                      "customer": "headset_speaker.monitor"}
        d.event("device_up", stream="agent")
        d.event("device_up", stream="customer")
        outputs = virtual_headset.source_outputs(d.proc.pid)
        where = {o["callwatch.stream"]: o["source"] for o in outputs}
        assert where == {"agent": "headset_mic", "customer": "headset_speaker.monitor"}
        assert all(o["application.name"] == "callwatch" for o in outputs)
        s = flowing(d, "customer")
        assert s["devices"]["agent"]["overflows"] == 0
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()


def test_pulse_backend_survives_every_fault_with_plain_reasons(virtual_headset: PulseServer,  # noqa: F811
                                                               tmp_path):
    srv = virtual_headset
    d = DaemonProcess(tmp_path, CONFIG, env=srv.full_env())
    try:
        d.event("device_up", stream="agent")
        d.event("device_up", stream="customer")
        d.control("start fault-call")
        restarts = settled(d)["devices"]["agent"]["restarts"]
        assert restarts == 0

        # 1. The server kills our record stream.
        mark = len(d.read())
        assert srv.kill_source_outputs(d.proc.pid, "headset_mic") == 1
        lost_and_restored(d, "agent", mark)
        lost = next(r for r in d.records[mark:] if r["event"] == "device_lost")
        assert lost["reason"] == "stream ended by the sound server"
        assert flowing(d, "agent")["devices"]["agent"]["restarts"] == restarts + 1
        restarts += 1

        # 2. The headset is unplugged: the source disappears. The stream is not moved to
        #    another source (it would record the wrong device): it is lost, stays down
        #    while the source is gone, and comes back when it is plugged in again.
        settled(d)
        mark = len(d.read())
        srv.unload_mic()
        lost = d.event("device_lost", stream="agent", after=mark)
        assert lost["reason"].startswith("source headset_mic removed (headset unplugged"), lost
        time.sleep(0.8)
        s = d.control("status")
        assert not s["devices"]["agent"]["up"] and s["devices"]["customer"]["up"]
        assert not [o for o in srv.source_outputs(d.proc.pid)
                    if o.get("callwatch.stream") == "agent"]
        srv.reload_mic()
        restored = d.event("device_restored", stream="agent", after=mark)
        assert restored["after"].startswith(lost["reason"]) and restored["down_s"] > 0.5
        assert flowing(d, "agent")["devices"]["agent"]["restarts"] == restarts + 1
        restarts += 1
        # the far end was never touched: a named source does not follow the default
        assert not [r for r in d.records[mark:] if r.get("stream") == "customer"
                    and r["event"] == "device_lost"]

        # 3. The source is suspended: no audio, no error from the stream itself.
        settled(d)
        mark = len(d.read())
        srv.suspend_mic(True)
        lost = d.event("device_lost", stream="agent", after=mark)
        # (headset_mic is a remap of mic_feed.monitor: the source under it is suspended)
        assert lost["reason"].startswith("source suspended by the sound server: "
                                         "mic_feed.monitor (no audio for "), lost["reason"]
        time.sleep(0.5)
        srv.suspend_mic(False)
        d.event("device_restored", stream="agent", after=mark)
        assert flowing(d, "agent")["devices"]["agent"]["restarts"] == restarts + 1

        # 4. The sound server restarts: both connections fail, both come back.
        s = settled(d)
        restarts = s["devices"]["agent"]["restarts"]
        customer_restarts = s["devices"]["customer"]["restarts"]
        mark = len(d.read())
        srv.restart()
        lost_and_restored(d, "agent", mark, timeout=10)
        lost_and_restored(d, "customer", mark, timeout=10)
        for stream in ("agent", "customer"):
            lost = next(r for r in d.records[mark:]
                        if r["event"] == "device_lost" and r["stream"] == stream)
            assert lost["reason"] == ("lost the connection to the sound server (stopped or "
                                      "restarted)"), lost
        s = flowing(d, "agent")
        flowing(d, "customer")
        assert s["devices"]["agent"]["restarts"] > restarts
        assert s["devices"]["customer"]["restarts"] > customer_restarts
        assert s["call_id"] == "fault-call"

        rc, took = d.terminate(signal.SIGTERM)
        assert rc == 0 and took < 2.0, (rc, took)
        stopped = d.records[-1]
        assert stopped["event"] == "stopped"
        assert stopped["streams"]["agent"]["restarts"] == s["devices"]["agent"]["restarts"]
        # a reconnect starts the skew estimate afresh instead of fitting across the gap
        assert all(v is None or abs(v) < 500 for v in stopped["skew_ppm"].values()), stopped
        # no line from the sound libraries (ALSA, PortAudio, libpulse) on stderr
        err = d.stderr.read_text()
        assert not [line for line in err.splitlines()
                    if any(w in line for w in ("ALSA lib", "PortAudio", "pa_", "Assertion"))], err
    finally:
        d.kill()
        with contextlib.suppress(Exception):  # leave the headset as the next test expects it
            if srv.module_index("source_name=headset_mic") is None:
                srv.reload_mic()
            srv.suspend_mic(False)


def test_pulse_capture_keeps_both_parties_in_step(virtual_headset: PulseServer,  # noqa: F811
                                                  tmp_path):
    """The same noise bursts played into both sinks at once (one combined sink) reach the
    pipeline at the same time: the capture timestamps put the two parties within a few
    milliseconds of each other, from the first second of the stream on.

    Both parties are read from sink monitors here. The virtual headset's ``headset_mic`` is a
    remap of ``mic_feed.monitor``, which passes each packet on one 10 ms period later and
    reports no latency for it: read from there, the agent came out 10 ms late in every run
    (6-14 ms under load, over 15 ms now and then in a full suite), the test rig's delay, not
    the stamps'. From two monitors the bursts line up within 2 ms on an idle machine; with six
    busy loops on two cores, within 2.2 ms over the whole recording (20 runs) and 3.4 ms burst
    by burst (10 runs), where the median of the capture times (before
    :data:`dsp.align.OFFSET_QUANTILE`) put them up to 9.6 ms apart."""
    from daemon.epoch import Epoch, StreamReader
    from daemon.pulse_reader import PulseInputStream
    from dsp.align import Aligner

    srv = virtual_headset
    idx = srv.pactl("load-module", "module-combine-sink", "sink_name=both",
                    "slaves=mic_feed,headset_speaker").stdout.strip()
    rate = 16000
    x = np.zeros(rate * 3, np.float32)
    rng = np.random.default_rng(7)
    for k in range(5):
        x[rate // 2 + k * rate // 2:][:800] = 0.3 * rng.standard_normal(800)
    import soundfile as sf

    sf.write(tmp_path / "bursts.wav", x, rate, subtype="PCM_16")
    streams = {}
    try:
        for name, dev in (("agent", "mic_feed.monitor"), ("customer", "headset_speaker.monitor")):
            ep = Epoch(rate * 10, rate)
            s = PulseInputStream(dev, rate, rate // 50, ep, {"callwatch.stream": name}, True)
            s.start()
            streams[name] = s
        aligner = Aligner(rate, rate, 60.0)
        readers = {n: StreamReader() for n in streams}
        out: dict[str, list[np.ndarray]] = {"agent": [], "customer": []}
        player = srv.play("both", tmp_path / "bursts.wav")
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            # As the processing loop drives them: sleep (in the main loop of a stream whose
            # capture time is due), then take both streams' audio at once.
            until = time.monotonic() + 0.05
            due = min(streams.values(), key=lambda s: s.next_stamp)
            if due.next_stamp <= until:
                due.sleep_until(until)
            time.sleep(max(0.0, until - time.monotonic()))
            for s in streams.values():
                s.pump()
            for n, s in streams.items():
                r, a = readers[n], aligner.streams[n]
                if r.switch(s.epoch):
                    a.new_epoch()
                for i, t in r.read_timestamps():
                    a.add_timestamp(i, t)
                a.add_samples(r.read_samples())
            got = aligner.pull({"agent": True, "customer": True})
            if got is not None:
                out["agent"].append(got[0])
                out["customer"].append(got[1])
        assert player.wait(5) == 0
    finally:
        for s in streams.values():
            s.close()
        srv.pactl("unload-module", idx, check=False)
    a, c = np.concatenate(out["agent"]), np.concatenate(out["customer"])
    assert np.abs(a).max() > 0.1 and np.abs(c).max() > 0.1
    corr = np.correlate(a, c, "full")
    lag_ms = 1000 * (int(np.argmax(corr)) - (len(c) - 1)) / rate
    assert abs(lag_ms) < 8.0, lag_ms
    # Burst by burst, the first one (the stream's first second) included.
    onsets = []
    for x_ in (a, c):
        loud = np.flatnonzero(np.abs(x_) > 0.05)
        onsets.append(loud[np.concatenate(([True], np.diff(loud) > rate // 10))].tolist())
    assert len(onsets[0]) == len(onsets[1]) == 5, onsets
    lags = [1000 * (p - q) / rate for p, q in zip(*onsets, strict=True)]
    assert all(abs(g) < 8.0 for g in lags), lags


# -- the far end narrowed to the softphone's own stream ----------------------------------------

SOFTPHONE = "softphone"


def _app_config(far_end_app: str) -> str:
    return CONFIG + f'far_end_app = "{far_end_app}"\n'


def _play_as(srv: PulseServer, app: str, sink: str, path) -> subprocess.Popen[bytes]:
    """Play a file as an application of that name (what the server shows as
    ``application.name``)."""
    return subprocess.Popen(["paplay", f"--property=application.name={app}", "-d", sink,
                             str(path)], env=srv.full_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def system_sounds_call(tmp_path_factory):
    """The agent speaks, then the customer answers through the softphone; meanwhile another
    application plays "system sounds" into the same headset: chimes and a voice (a video in a
    browser tab) while the agent speaks, and a chime while the customer does."""
    import soundfile as sf

    from dsp.pipeline import Pipeline
    from tests.speech import place, voice

    rate = 16000
    n = rate * 12
    agent = np.zeros(n, np.float32)
    phone = np.zeros(n, np.float32)
    sounds = np.zeros(n, np.float32)
    place(agent, voice("mmt1")[: rate * 3], 1.5)
    place(phone, voice("hts2")[: rate * 4], 6.0)
    t = np.arange(int(0.6 * rate)) / rate
    chime = (0.3 * np.exp(-4 * t) * (np.sin(2 * np.pi * 880 * t)
                                     + np.sin(2 * np.pi * 1320 * t))).astype(np.float32)
    for at in (2.0, 3.2, 7.0):
        place(sounds, chime, at)
    place(sounds, voice("cq_ref")[: int(rate * 2.5)], 2.0)
    d = tmp_path_factory.mktemp("sounds")
    for name, x in (("agent", agent), ("phone", phone), ("sounds", sounds)):
        sf.write(d / f"{name}.wav", x, rate, subtype="PCM_16")
    p = Pipeline()
    p.push(agent, phone)
    p.finish()
    return d, p.totals.customer.speech_s


def _call(srv: PulseServer, d: DaemonProcess, files, with_sounds: bool) -> dict:
    d.control("start")
    players = [_play_as(srv, SOFTPHONE, "headset_speaker", files / "phone.wav"),
               srv.play("mic_feed", files / "agent.wav")]
    if with_sounds:
        players.append(srv.play("headset_speaker", files / "sounds.wav"))
    assert all(p.wait(30) == 0 for p in players)
    time.sleep(1.0)
    ended = d.control("end")
    assert ended["ok"], ended
    return ended["summary"]


def test_far_end_app_keeps_system_sounds_out_of_the_customer(
        virtual_headset: PulseServer, tmp_path, system_sounds_call):  # noqa: F811
    srv = virtual_headset
    files, expected_customer_s = system_sounds_call
    d = DaemonProcess(tmp_path, _app_config(SOFTPHONE), env=srv.full_env())
    try:
        up = d.event("device_up", stream="customer")
        assert up["device"] == ("headset_speaker.monitor (softphone plays nothing: everything "
                                "the sink plays)"), up
        d.event("device_up", stream="agent")
        summaries = {}
        for with_sounds in (False, True):
            mark = len(d.read())
            summaries[with_sounds] = _call(srv, d, files, with_sounds)
            # the softphone's stream appeared (followed) and ended (back to the fallback)
            started = d.event("device_lost", stream="customer", after=mark)
            assert started["reason"] == ("softphone started playing on headset_speaker: "
                                         "recording its stream only"), started
            restored = d.wait_for(lambda r: r.get("event") == "device_restored"
                                  and r.get("stream") == "customer", after=mark,
                                  what="the far end on the softphone's stream")
            assert restored["device"] == "pulse:headset_speaker.monitor (softphone only)"
            gone = d.wait_for(lambda r: r.get("event") == "device_lost"
                              and r.get("stream") == "customer"
                              and "stopped playing" in r.get("reason", ""), after=mark,
                              what="the softphone's stream ending")
            assert gone["reason"] == "softphone stopped playing (call ended or app closed)"
            # Back on the whole sink's monitor before the next call: started sooner, the
            # softphone's next stream replaces a capture still down, and no "started playing"
            # loss is logged for it.
            d.wait_for(lambda r: r.get("event") == "device_restored"
                       and r.get("stream") == "customer"
                       and "plays nothing" in str(r.get("device")), after=mark,
                       what="the fallback capture after the softphone's stream")
        clean, noisy = summaries[False], summaries[True]
        print(f"customer speech: {expected_customer_s:.2f} s in the file, "
              f"{clean['customer']['speech_s']} s captured alone, "
              f"{noisy['customer']['speech_s']} s beside system sounds")
        assert clean["customer"]["speech_s"] == pytest.approx(expected_customer_s, rel=0.1)
        # Two live captures of the same call differ by a few 20 ms frames (where the frame
        # grid falls on the audio); the other application's 2.5 s of voice would add seconds.
        assert noisy["customer"]["speech_s"] == pytest.approx(clean["customer"]["speech_s"],
                                                              abs=0.2), (clean, noisy)
        assert noisy["talk_over"]["count"] == clean["talk_over"]["count"] == 0
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()


def test_without_far_end_app_system_sounds_count_as_the_customer(
        virtual_headset: PulseServer, tmp_path, system_sounds_call):  # noqa: F811
    """The same call on the whole sink monitor: the other application's voice becomes
    "customer speech" over the agent, which is what far_end_app prevents."""
    files, expected_customer_s = system_sounds_call
    d = DaemonProcess(tmp_path, CONFIG, env=virtual_headset.full_env())
    try:
        d.event("device_up", stream="customer")
        d.event("device_up", stream="agent")
        noisy = _call(virtual_headset, d, files, with_sounds=True)
        print(f"whole sink monitor: customer speech {noisy['customer']['speech_s']} s, "
              f"talk-overs {noisy['talk_over']['count']}")
        assert noisy["customer"]["speech_s"] > expected_customer_s + 1.0, noisy
        assert noisy["talk_over"]["count"] >= 1, noisy
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()


def test_devices_lists_the_playing_applications(virtual_headset: PulseServer,  # noqa: F811
                                                system_sounds_call):
    import json
    import sys

    files, _ = system_sounds_call
    player = _play_as(virtual_headset, SOFTPHONE, "headset_speaker", files / "phone.wav")
    try:
        time.sleep(0.5)
        out = subprocess.run([sys.executable, "-m", "daemon.cli", "devices", "--json"],
                             capture_output=True, text=True, env=virtual_headset.full_env(),
                             timeout=30)
        text = subprocess.run([sys.executable, "-m", "daemon.cli", "devices"],
                              capture_output=True, text=True, env=virtual_headset.full_env(),
                              timeout=30)
    finally:
        player.terminate()
        player.wait(5)
    assert out.returncode == 0, out.stderr
    apps = [json.loads(line) for line in out.stdout.splitlines() if "playing_app" in line]
    assert [(a["playing_app"], a["binary"], a["sink"]) for a in apps] \
        == [(SOFTPHONE, "pacat", "headset_speaker")], out.stdout  # paplay is pacat
    assert "Playing applications (far_end_app" in text.stdout
    assert f"  {SOFTPHONE:<24} binary pacat" in text.stdout, text.stdout


def test_far_end_app_needs_the_pulse_backend(virtual_headset: PulseServer, tmp_path):  # noqa: F811
    d = DaemonProcess(tmp_path, CONFIG.replace('backend = "pulse"', 'backend = "portaudio"')
                      + 'far_end_app = "softphone"\n', env=virtual_headset.full_env())
    rc = d.proc.wait(timeout=30)
    err = d.stderr.read_text()
    assert rc == 2, err
    assert '[capture] far_end_app = "softphone" needs backend = "pulse"' in err
