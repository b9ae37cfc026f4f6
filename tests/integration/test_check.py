"""``callwatch check`` on the virtual PulseAudio headset, with real faults injected.

Speech is a real recording (codec2-examples) played into ``mic_feed`` (what the headset mic
hears) through the documented ``--speech-sink`` test route; room noise, hum and clipping are
played into the same sink; the speaker leak is a real ``module-loopback`` from the speaker's
monitor into the mic; the mute and the low gain are the sound server's own source controls.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import soundfile as sf

from daemon.check.result import LastCheckWatcher, load_last_check
from daemon.check.steps import SENTENCE
from daemon.state import DaemonState
from dsp.levels import ActiveLevelMeter
from tests.integration.pulse import PulseServer, virtual_headset  # noqa: F401
from tests.speech import voice

pytestmark = pytest.mark.integration

RATE = 16000
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "daemon" / "check.schema.json"
HEADSET = '[capture]\nmic_device = "headset_mic"\nfar_end_device = "speaker_monitor"\n'


def _db(x: float) -> float:
    return 10 ** (x / 20)


def room(seconds: float, dbfs: float = -62.0, seed: int = 3) -> np.ndarray:
    """Quiet room noise (white, -62 dBFS): a real mic is never digitally silent."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(round(seconds * RATE)) * _db(dbfs)).astype(np.float32)


def speech(level_db: float = 0.0) -> np.ndarray:
    """About 5 s of a real voice at -26 dBFS active level (P.56), shifted by ``level_db``."""
    v = np.concatenate([voice("hts1"), voice("kristoff")])[: 5 * RATE]
    meter = ActiveLevelMeter(RATE)
    meter.process(v)
    assert meter.level_dbfs is not None
    return v * np.float32(_db(-26.0 - meter.level_dbfs + level_db))


def write(path: Path, x: np.ndarray) -> Path:
    sf.write(path, np.clip(x, -1.0, 1.0), RATE, subtype="FLOAT")
    return path


@contextlib.contextmanager
def playing(server: PulseServer, sink: str, path: Path) -> Iterator[None]:
    p = server.play(sink, path)
    time.sleep(0.2)
    try:
        yield
    finally:
        p.terminate()
        p.wait(timeout=5)


def run_check(server: PulseServer, tmp: Path, *extra: str) -> tuple[int, dict, str, float]:
    cfg = tmp / "config.toml"
    cfg.write_text(HEADSET)
    env = server.full_env(XDG_STATE_HOME=str(tmp / "state"), XDG_CONFIG_HOME=str(tmp / "cfg"))
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check", "--config", str(cfg), "--non-interactive",
         "--json", *extra], capture_output=True, text=True, env=env, timeout=90)
    took = time.monotonic() - t0
    assert out.stdout.strip(), out.stderr
    return out.returncode, json.loads(out.stdout), out.stderr, took


def item(result: dict, name: str) -> dict:
    return next(i for i in result["items"] if i["name"] == name)


def test_healthy_headset_passes_within_a_minute(virtual_headset, tmp_path):  # noqa: F811
    speech_file = write(tmp_path / "speech.wav", speech())
    bed = write(tmp_path / "room.wav", room(40))
    with playing(virtual_headset, "mic_feed", bed):
        rc, res, err, took = run_check(virtual_headset, tmp_path, "--speech", str(speech_file),
                                       "--speech-sink", "mic_feed")
    print(f"\ncallwatch check --non-interactive --json --speech ...: {took:.1f} s wall, "
          f"{res['duration_s']} s measured by the check")
    bad = [(i["name"], i["verdict"], i["message"]) for i in res["items"]
           if i["verdict"] != "pass"]
    assert rc == 0 and res["result"] == "pass", (bad, err)
    assert took < 60
    jsonschema.validate(res, json.loads(SCHEMA_PATH.read_text()))
    names = [i["name"] for i in res["items"]]
    assert names == ["mic_device", "far_end_device", "mic_signal", "noise", "hum", "dc_offset",
                     "mic_level", "clipping", "snr", "speaker_device", "echo", "latency",
                     "far_end_route"]
    assert -64 < item(res, "noise")["value"] < -60
    assert abs(item(res, "mic_level")["value"] - (-26)) < 3
    assert item(res, "snr")["value"] > 30
    assert item(res, "echo")["detected"] is False
    assert item(res, "far_end_route")["value"] > 0.9
    assert res["devices"]["mic"]["source"] == "headset_mic"
    assert res["devices"]["far_end"]["source"] == "headset_speaker.monitor"
    # The saved copy is what the daemon exports.
    saved = load_last_check(tmp_path / "state" / "callwatch" / "check.json")
    assert saved == res
    state = DaemonState(agent_id="a@b")
    assert LastCheckWatcher(tmp_path / "state" / "callwatch" / "check.json").poll(state)
    assert state.check_results["mic_level"] == 0 and len(state.check_results) == len(names)
    assert state.check_timestamp == res["unix_time"]


def test_missing_mic_fails_with_the_candidates(virtual_headset, tmp_path):  # noqa: F811
    rc, res, err, _ = run_check(virtual_headset, tmp_path, "--mic", "nonexistent",
                                "--no-playback", "--silence-s", "1")
    assert rc == 2, err
    mic = item(res, "mic_device")
    assert mic["verdict"] == "fail"
    assert '"headset_mic"' in mic["message"] and '"speaker_monitor"' in mic["message"]
    assert "--mic" in mic["fix"]
    assert item(res, "far_end_device")["verdict"] == "pass"
    assert item(res, "noise")["verdict"] == "skip"


def test_a_missing_mic_given_on_the_command_line_names_the_option(
        virtual_headset, tmp_path):  # noqa: F811
    """The value came from --mic, not the config: the message says so, and lists what can
    be passed besides PortAudio's devices: the sound server's sources (``pulse:NAME``), as
    ``callwatch devices`` shows them."""
    rc, res, err, _ = run_check(virtual_headset, tmp_path, "--mic", "Jabra", "--speaker",
                                "Jabra", "--silence-s", "1")
    assert rc == 2, err
    mic = item(res, "mic_device")
    assert mic["message"].startswith('The mic device is missing: --mic "Jabra": no mic device '
                                     "matches"), mic
    assert "[capture]" not in mic["message"]
    assert '"headset_mic"' in mic["message"]  # PortAudio's PCM, as before
    assert '"headset_speaker.monitor"' in mic["message"] and "pulse:NAME" in mic["message"]
    assert "--mic" in mic["fix"]
    speaker = item(res, "speaker_device")
    assert speaker["verdict"] == "fail" and '"headset_speaker"' in speaker["message"], speaker
    assert "pulse:SINK" in speaker["message"]


def test_items_keep_the_documented_order_when_a_device_is_missing(
        virtual_headset, tmp_path):  # noqa: F811
    """A missing far end fails before the mic's pass is known; the report and the JSON still
    list mic_device first, as docs/check.md documents (and the text report follows it)."""
    rc, res, err, _ = run_check(virtual_headset, tmp_path, "--far-end", "nosuch",
                                "--silence-s", "1")
    assert rc == 2, err
    names = [i["name"] for i in res["items"]]
    assert names == ["mic_device", "far_end_device", "mic_signal", "noise", "hum", "dc_offset",
                     "mic_level", "clipping", "snr", "speaker_device", "echo", "latency",
                     "far_end_route"], names
    assert item(res, "far_end_device")["message"].startswith(
        'The far end device is missing: --far-end "nosuch"')


def test_a_digitally_silent_floor_is_skipped_not_passed(virtual_headset, tmp_path):  # noqa: F811
    """The mic gives zeros while the agent is quiet (a gating headset, nothing in mic_feed)
    but speech when spoken to: noise, DC offset and SNR have no floor to measure and are
    skipped as hum is, not passed at -120 dBFS and 93 dB."""
    speech_file = write(tmp_path / "speech.wav", speech())
    rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback", "--silence-s", "1",
                                "--speech", str(speech_file), "--speech-sink", "mic_feed")
    assert rc == 0 and item(res, "mic_signal")["verdict"] == "pass", (res, err)
    for name in ("noise", "hum", "dc_offset", "snr"):
        it = item(res, name)
        assert it["verdict"] == "skip" and it["value"] is None, it
        assert "no signal from the mic" in it["message"], it
    assert item(res, "mic_level")["verdict"] == "pass"


def test_muted_mic_is_dead(virtual_headset, tmp_path):  # noqa: F811
    bed = write(tmp_path / "room.wav", room(20))
    virtual_headset.pactl("set-source-mute", "headset_mic", "1")
    try:
        with playing(virtual_headset, "mic_feed", bed):
            rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback")
    finally:
        virtual_headset.pactl("set-source-mute", "headset_mic", "0")
    assert rc == 2, err
    dead = item(res, "mic_signal")
    assert dead["verdict"] == "fail" and dead["value"] < -70
    assert "pactl set-source-mute headset_mic 0" in dead["fix"]


def test_silent_mic_is_dead_and_measures_nothing(virtual_headset, tmp_path):  # noqa: F811
    """What a dead mic would "measure" (a -120 dBFS noise floor, no speaker sound reaching
    it) is skipped, not passed: a pass would read as a good headset on the fleet's board."""
    rc, res, err, _ = run_check(virtual_headset, tmp_path)
    assert rc == 2, err
    dead = item(res, "mic_signal")
    assert dead["verdict"] == "fail" and "digital silence" in dead["message"]
    for name in ("noise", "hum", "dc_offset", "echo"):
        it = item(res, name)
        assert it["verdict"] == "skip" and it["value"] is None, it
    assert "the mic gives no signal" in item(res, "echo")["message"]


def test_mains_hum_is_found_with_its_frequency(virtual_headset, tmp_path):  # noqa: F811
    t = np.arange(20 * RATE) / RATE
    hum = sum(_db(lvl) * np.sqrt(2) * np.sin(2 * np.pi * f * t)
              for f, lvl in ((50, -58), (100, -66), (150, -62)))
    bed = write(tmp_path / "hum.wav", room(20) + hum.astype(np.float32))
    with playing(virtual_headset, "mic_feed", bed):
        rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback")
    h = item(res, "hum")
    assert rc == 2, (h, err)
    assert h["verdict"] == "fail" and h["mains_hz"] == 50 and h["harmonic_hz"] == 50
    assert h["value"] > 30
    assert h["fix"].startswith("Mains hum at 50 Hz,") and "ground" in h["fix"]
    assert item(res, "noise")["verdict"] == "pass"  # -56 dBFS of hum: not (yet) noisy


def test_low_input_volume_gives_the_volume_to_set(virtual_headset, tmp_path):  # noqa: F811
    speech_file = write(tmp_path / "speech.wav", speech())
    bed = write(tmp_path / "room.wav", room(30))
    virtual_headset.pactl("set-source-volume", "headset_mic", "40%")  # -23.9 dB (cubic)
    try:
        with playing(virtual_headset, "mic_feed", bed):
            rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback",
                                        "--silence-s", "1", "--speech", str(speech_file),
                                        "--speech-sink", "mic_feed")
    finally:
        virtual_headset.pactl("set-source-volume", "headset_mic", "100%")
    lvl = item(res, "mic_level")
    assert rc == 2, (lvl, err)
    assert lvl["verdict"] == "fail" and -53 < lvl["value"] < -47
    assert lvl["threshold"] == -38
    # 24 dB too low at 40 %: 40 % x 10^(24/60) = about 100 %.
    assert "from 40 % to about" in lvl["fix"]
    pct = float(lvl["fix"].split("to about ")[1].split(" %")[0])
    assert 85 <= pct <= 115, lvl["fix"]


def test_clipping_speech_fails(virtual_headset, tmp_path):  # noqa: F811
    speech_file = write(tmp_path / "speech.wav", speech(+24))  # clipped at full scale
    rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback", "--silence-s", "1",
                                "--speech", str(speech_file), "--speech-sink", "mic_feed")
    clip = item(res, "clipping")
    assert rc == 2, (clip, err)
    assert clip["verdict"] == "fail" and clip["value"] > 0.1 and clip["clipped_samples"] > 100
    assert "lower the input volume" in clip["fix"]


def test_speaker_leak_into_the_mic_is_measured(virtual_headset, tmp_path):  # noqa: F811
    bed = write(tmp_path / "room.wav", room(20))
    idx = virtual_headset.pactl(
        "load-module", "module-loopback", "source=headset_speaker.monitor", "sink=mic_feed",
        "latency_msec=60", "source_dont_move=true", "sink_dont_move=true").stdout.strip()
    try:
        with playing(virtual_headset, "mic_feed", bed):
            rc, res, err, _ = run_check(virtual_headset, tmp_path, "--silence-s", "1")
    finally:
        virtual_headset.pactl("unload-module", idx)
    echo = item(res, "echo")
    assert rc == 2, (echo, err)
    assert echo["verdict"] == "fail" and echo["detected"] is True
    print(f"\nloopback leak: coupling {echo['value']} dB, delay {item(res, 'latency')['value']} ms")
    assert -4 < echo["value"] < 4  # a loopback at 100 %: the whole burst reaches the mic
    assert "use the headset instead of the laptop speakers" in echo["fix"]
    lat = item(res, "latency")
    assert lat["path"] == "mic" and 20 < lat["value"] < 400, lat


def test_no_sound_server_could_not_run(virtual_headset, tmp_path):  # noqa: F811
    env = virtual_headset.full_env(PULSE_SERVER=f"unix:{tmp_path}/no-such-server",
                                   XDG_STATE_HOME=str(tmp_path / "state"))
    out = subprocess.run([sys.executable, "-m", "daemon.cli", "check", "--non-interactive",
                          "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 3, out.stderr
    res = json.loads(out.stdout)
    assert res["result"] == "error" and "PulseAudio/PipeWire" in res["error"]
    assert "callwatch check: no audio input devices at all" in out.stderr
    assert not (tmp_path / "state").exists()  # nothing measured: the last result stays


def test_running_daemon_exports_the_last_check(virtual_headset, tmp_path):  # noqa: F811
    """A real daemon on the virtual headset, a real check run beside it (both share the
    devices, as on a workstation): the check's verdicts appear on the daemon's /metrics."""
    import urllib.request

    from tests.integration.daemon_run import DaemonProcess
    from tests.ports import free_port

    port = free_port()
    env = virtual_headset.full_env(XDG_STATE_HOME=str(tmp_path / "state"))
    daemon = DaemonProcess(tmp_path / "daemon", HEADSET + f"[metrics]\nport = {port}\n",
                           args=("--no-server",), env=env, servers=True)
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> str:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            return ""

    try:
        deadline = time.monotonic() + 15
        while "callwatch_check_timestamp_seconds" not in scrape():
            assert daemon.proc.poll() is None, daemon.stderr.read_text()[-2000:]
            assert time.monotonic() < deadline, "no /metrics within 15 s"
            time.sleep(0.2)
        assert 'callwatch_check_result{check="hum"}' not in scrape()  # no check yet
        t = np.arange(20 * RATE) / RATE
        hum = (0.003 * np.sin(2 * np.pi * 60 * t)).astype(np.float32)
        with playing(virtual_headset, "mic_feed", write(tmp_path / "hum.wav", room(20) + hum)):
            rc, res, err, _ = run_check(virtual_headset, tmp_path, "--no-playback",
                                        "--silence-s", "2")
        assert rc == 2 and item(res, "hum")["verdict"] == "fail", err
        deadline = time.monotonic() + 5
        while 'callwatch_check_result{check="hum"} 2.0' not in (text := scrape()):
            assert time.monotonic() < deadline, text[-3000:]
            time.sleep(0.2)
        assert 'callwatch_check_result{check="noise"} 0.0' in text
        assert 'check="mic_level"' not in text  # skipped (no speech test): not exported
        ts = [line for line in text.splitlines()
              if line.startswith("callwatch_check_timestamp_seconds ")]
        assert len(ts) == 1 and float(ts[0].split()[1]) == pytest.approx(res["unix_time"])
    finally:
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.wait(timeout=15)


def test_interactive_run_follows_the_prompts(virtual_headset, tmp_path):  # noqa: F811
    """On a terminal the check waits for Enter before each test and shows the sentence; the
    'agent' (speech played into the mic when the prompt appears) reads it."""
    import os
    import pty

    speech_file = write(tmp_path / "speech.wav", speech())
    bed = write(tmp_path / "room.wav", room(30))
    cfg = tmp_path / "config.toml"
    cfg.write_text(HEADSET)
    master, slave = pty.openpty()
    env = virtual_headset.full_env(XDG_STATE_HOME=str(tmp_path / "state"))
    with playing(virtual_headset, "mic_feed", bed):
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "check", "--config", str(cfg), "--json",
             "--no-playback", "--silence-s", "1", "--speech-s", "5"],
            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        os.close(slave)
        shown, prompts = "", 0
        try:
            assert proc.stderr is not None
            while prompts < 2:
                line = proc.stderr.readline()
                assert line, f"check ended before prompting: {shown}"
                shown += line
                if "[press Enter]" in line:
                    prompts += 1
                    if prompts == 2:  # the agent starts reading as they press Enter
                        voice_proc = virtual_headset.play("mic_feed", speech_file)
                    os.write(master, b"\n")
            out, err = proc.communicate(timeout=60)
            voice_proc.wait(timeout=10)
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()
    res = json.loads(out)
    assert proc.returncode == 0, (res, err)
    assert res["mode"] == "interactive"
    assert "stay quiet" in shown and SENTENCE in shown
    assert abs(item(res, "mic_level")["value"] - (-26)) < 3


def test_unknown_speech_sink_is_bad_input(virtual_headset, tmp_path):  # noqa: F811
    speech_file = write(tmp_path / "speech.wav", speech())
    cfg = tmp_path / "config.toml"
    cfg.write_text(HEADSET)
    out = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check", "--config", str(cfg), "--non-interactive",
         "--speech", str(speech_file), "--speech-sink", "mouth"], capture_output=True, text=True,
        env=virtual_headset.full_env(XDG_STATE_HOME=str(tmp_path / "state")), timeout=60)
    assert out.returncode == 2
    assert "--speech-sink pulse:mouth: no such sink; sinks: headset_speaker, mic_feed" in out.stderr
