"""Live capture on a real (virtual) headset: a call played into the mic and the speaker is
captured by `callwatch run`, and its talk-overs come out at the right times, through both
capture backends (libpulse and PortAudio)."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
import soundfile as sf

from dsp.events import Kind, Phase
from dsp.pipeline import Pipeline
from tests.integration.daemon_run import DaemonProcess
from tests.integration.pulse import virtual_headset  # noqa: F401
from tests.speech import two_party_call

pytestmark = pytest.mark.integration

TURNS = [("agent", "kristoff", 0.3), ("customer", "hts2", 3.0), ("agent", "mmt1", 7.0)]
"""The customer cuts into the agent's turn, then the agent into the customer's 1.5 s later,
with overlaps long enough that both are found at any offset of the two capture streams
within ±0.5 s (checked offline in 10 ms steps: frame phase moves a borderline one)."""
CALL_S = 12.5

BACKENDS = ("pulse", "portaudio")

HEADSET_CONFIG = """
[capture]
backend = "{backend}"
mic_device = "headset_mic"
far_end_device = "speaker_monitor"
auto_calls = false
retry_min_s = 0.1
retry_max_s = 1.0
stall_timeout_s = 0.5
"""


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def headset_config(backend: str) -> str:
    return HEADSET_CONFIG.replace("{backend}", backend)


def expected_talk_overs(agent: np.ndarray, customer: np.ndarray) -> list[tuple[float, str]]:
    p = Pipeline()
    events = p.push(agent, customer) + p.finish()
    return [(e.start_s, str(e.data["initiator"])) for e in events
            if e.kind is Kind.TALK_OVER and e.phase is Phase.END]


@pytest.fixture(scope="module")
def call_files(tmp_path_factory):
    agent, customer = two_party_call(TURNS, CALL_S, seed=5)
    d = tmp_path_factory.mktemp("call")
    sf.write(d / "agent.wav", agent, 16000, subtype="PCM_16")
    sf.write(d / "customer.wav", customer, 16000, subtype="PCM_16")
    return d / "agent.wav", d / "customer.wav", expected_talk_overs(agent, customer)


def test_devices_lists_the_virtual_headset(virtual_headset):  # noqa: F811
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "daemon.cli", "devices", "--json"],
                         capture_output=True, text=True, env=virtual_headset.full_env(),
                         timeout=30)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    by_name = {r["name"]: r for r in rows if "name" in r}
    assert by_name["speaker_monitor"]["monitor"] is True
    assert by_name["headset_mic"]["monitor"] is False
    mon = next(r for r in rows if r.get("pulse_source") == "headset_speaker.monitor")
    assert mon["monitor"] is True and mon["spec"] == "pulse:headset_speaker.monitor"
    assert mon["description"].startswith("Monitor of "), mon  # what a short name matches
    text = subprocess.run([sys.executable, "-m", "daemon.cli", "devices"], capture_output=True,
                          text=True, env=virtual_headset.full_env(), timeout=30).stdout
    line = next(x for x in text.splitlines() if "pulse:headset_speaker.monitor" in x)
    assert '"Monitor of ' in line and "monitor (far end)" in line, text


@pytest.mark.parametrize("as_json", [True, False])
def test_devices_without_a_sound_server_says_so_and_exits_3(virtual_headset, tmp_path,  # noqa: F811
                                                            as_json):
    import json
    import subprocess
    import sys

    env = virtual_headset.full_env(PULSE_SERVER=f"unix:{tmp_path}/no-such-server")
    out = subprocess.run([sys.executable, "-m", "daemon.cli", "devices",
                          *(["--json"] if as_json else [])],
                         capture_output=True, text=True, env=env, timeout=30)
    assert out.returncode == 3, (out.stdout, out.stderr)
    assert "no input devices" in out.stderr and "PulseAudio/PipeWire running" in out.stderr
    if as_json:
        assert [json.loads(line) for line in out.stdout.splitlines()] \
            == [{"error": out.stderr.strip().removeprefix("callwatch devices: ")}]
    else:
        assert out.stdout == ""


@pytest.mark.parametrize("config", ["", '[capture]\nmic_device = "jabra"\n'])
def test_run_without_a_sound_server_says_so_and_exits_3(virtual_headset, tmp_path,  # noqa: F811
                                                        config):
    """No input device at all is the machine's problem, not the config's: "could not run" (3),
    as `devices` and `check` say, not bad input (2), whatever device the config names; the
    message names the config file."""
    env = virtual_headset.full_env(PULSE_SERVER=f"unix:{tmp_path}/no-such-server")
    d = DaemonProcess(tmp_path, config, env=env)
    rc = d.proc.wait(timeout=30)
    err = d.stderr.read_text()
    assert rc == 3, err
    assert f"callwatch run: {d.config}: [capture] mic_device = " in err, err
    assert "no input devices at all (is the sound server running?)" in err


def test_unknown_device_fails_with_the_candidates(virtual_headset, tmp_path, backend):  # noqa: F811
    d = DaemonProcess(tmp_path, f'[capture]\nbackend = "{backend}"\nmic_device = "jabra"\n',
                      env=virtual_headset.full_env())
    rc = d.proc.wait(timeout=30)
    err = d.stderr.read_text()
    assert rc == 2, err
    if backend == "portaudio":
        assert '[capture] mic_device = "jabra": no mic device matches; input devices:' in err
        assert '"headset_mic"' in err and '"speaker_monitor"' in err
    else:
        assert '[capture] mic_device = "jabra": no mic source matches; sources:' in err
        assert '"headset_mic"' in err and '"headset_speaker.monitor"' in err


def test_live_call_talk_overs_at_the_right_times(virtual_headset, tmp_path, call_files,  # noqa: F811
                                                 backend):
    agent_wav, customer_wav, expected = call_files
    assert [who for _, who in expected] == ["customer", "agent"], expected
    d = DaemonProcess(tmp_path, headset_config(backend), env=virtual_headset.full_env())
    try:
        assert d.event("started")["backend"] == backend
        d.event("device_up", stream="agent")
        d.event("device_up", stream="customer")
        started = d.control("start")
        assert started["ok"], started
        p1 = virtual_headset.play("mic_feed", agent_wav)
        p2 = virtual_headset.play("headset_speaker", customer_wav)
        assert p1.wait(30) == 0 and p2.wait(30) == 0
        # Both talk-overs are over before the call ends (the second one's END comes 0.7 s
        # after its last overlapping frame, when no further stretch can join it).
        first = d.event("talk_over", phase="end", timeout=5)
        d.event("talk_over", phase="end", timeout=5, after=d.records.index(first) + 1)
        ended = d.control("end")
        assert ended["ok"], ended
        summary = ended["summary"]
        got = [(e["start_s"], e["initiator"]) for e in summary["events"]
               if e["kind"] == "talk_over"]
        assert [w for _, w in got] == [w for _, w in expected], (got, expected)
        offsets = [g - e for (g, _), (e, _) in zip(got, expected, strict=True)]
        # playback starts a few tens of ms after the call does; both talk-overs share it
        assert all(-0.1 <= o <= 0.6 for o in offsets), offsets
        assert max(offsets) - min(offsets) <= 0.1, offsets
        assert summary["talk_over"]["count"] == 2
        assert summary["talk_over"]["by_agent"] == 1 and summary["talk_over"]["by_customer"] == 1
        assert summary["agent"]["speech_s"] > 4.0 and summary["customer"]["speech_s"] > 3.0
        live = [r for r in d.records if r["event"] == "talk_over"]
        assert len(live) == 4 and all(r["call_id"] == started["call_id"] for r in live)
        # Audio held back while no event can come of it (dsp.hold) still brings each BEGIN
        # with the block that confirms it: tens of ms, never the hold's half second.
        latencies = [r["latency_ms"] for r in live if r["phase"] == "begin"]
        assert len(latencies) == 2 and all(0 <= x < 300 for x in latencies), latencies
        for r in d.records:
            if r["event"] in ("talk_over", "echo", "alert", "device_down", "device_up", "stall"):
                print(r)
        status = d.control("status")
        # Both streams delivered the whole call, without a gap. (How many reads that took
        # is the loop's business: it sleeps while no event can come of the audio.)
        assert status["processed_s"] >= CALL_S, status
        for stream in ("agent", "customer"):
            dev = status["devices"][stream]
            assert dev["overflows"] == 0 and dev["dropped_blocks"] == 0, status
            assert dev["callbacks"] > 0, status
        rc, took = d.terminate(signal.SIGTERM)
        assert rc == 0 and took < 2.0, (rc, took, d.stderr.read_text()[-1000:])
        assert d.records[-1]["event"] == "stopped"
    finally:
        d.kill()


def test_calls_start_and_end_from_far_end_activity(virtual_headset, tmp_path, backend):  # noqa: F811
    from tests.speech import voice

    far = tmp_path / "far.wav"
    sf.write(far, voice("hts2"), 16000, subtype="PCM_16")
    config = headset_config(backend).replace("auto_calls = false", "auto_calls = true") + \
        "call_start_speech_s = 1.0\ncall_end_silence_s = 2.0\n"
    d = DaemonProcess(tmp_path / "d", config, env=virtual_headset.full_env())
    try:
        d.event("device_up", stream="customer")
        time.sleep(1.0)
        assert not any(r["event"] == "call_started" for r in d.read())  # silence: no call
        player = virtual_headset.play("headset_speaker", far)
        t0 = time.monotonic()
        started = d.event("call_started", timeout=6)
        assert started["auto"] is True
        assert player.wait(20) == 0
        ended = d.event("call_ended", timeout=8)
        took = time.monotonic() - t0
        assert ended["call_id"] == started["call_id"] and ended["reason"] == "far end silent"
        summary = ended["summary"]
        assert summary["customer"]["speech_s"] > 2.0 and summary["talk_over"]["count"] == 0
        assert 6.0 < took < 12.0, took  # 6 s of speech, then 2 s of silence
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()


def test_check_config_checks_the_devices_when_a_sound_server_answers(virtual_headset,  # noqa: F811
                                                                     tmp_path):
    """A start refuses a device name that matches nothing: so does --check-config, when there
    is a server to ask. Without one (a machine building an image) it says the devices were
    not checked, and the file is still OK."""
    import subprocess
    import sys

    def check(text: str, **env: str) -> subprocess.CompletedProcess[str]:
        cfg = tmp_path / "c.toml"
        cfg.write_text(text)
        return subprocess.run([sys.executable, "-m", "daemon.cli", "run", "--config", str(cfg),
                               "--check-config"], capture_output=True, text=True,
                              env=virtual_headset.full_env(**env), timeout=60)

    out = check('[capture]\nmic_device = "Jabra Evolve2 99"\n')
    assert out.returncode == 2 and out.stdout == "", out
    assert out.stderr.strip() == (
        f'callwatch run: {tmp_path / "c.toml"}: [capture] mic_device = "Jabra Evolve2 99": no '
        'mic source matches; sources: "headset_speaker.monitor", "mic_feed.monitor", '
        '"headset_mic"'), out.stderr
    out = check('[capture]\nmic_device = "headset mic"\nfar_end_device = "speaker monitor"\n')
    assert (out.returncode, out.stderr) == (0, ""), out
    assert out.stdout.endswith("c.toml: OK\n")
    out = check('[capture]\nmic_device = "Jabra Evolve2 99"\n',
                PULSE_SERVER=f"unix:{tmp_path}/no-such-server")
    assert out.returncode == 0 and out.stdout.endswith("c.toml: OK\n"), out
    assert "note: devices not checked: no sound server answers" in out.stderr, out.stderr
