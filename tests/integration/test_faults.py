"""Device faults on a real PulseAudio server, captured through PortAudio: the daemon logs each
loss and recovery, keeps running, counts restarts, and captures again afterwards. (The same
faults on the libpulse backend: test_pulse_backend.py.)"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.integration.daemon_run import DaemonProcess
from tests.integration.pulse import PulseServer, virtual_headset  # noqa: F401

pytestmark = pytest.mark.integration

CONFIG = """
[capture]
backend = "portaudio"
mic_device = "headset_mic"
far_end_device = "speaker_monitor"
auto_calls = false
retry_min_s = 0.1
retry_max_s = 0.5
stall_timeout_s = 0.5
"""


def flowing(d: DaemonProcess, stream: str, timeout: float = 5.0) -> dict:
    """Wait until the stream is up and its callbacks and the processed audio advance."""
    s0 = d.control("status")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        s = d.control("status")
        dev, dev0 = s["devices"][stream], s0["devices"][stream]
        if dev["up"] and dev["callbacks"] > dev0["callbacks"] + 5 \
                and s["processed_s"] > s0["processed_s"] + 0.1:
            return s
    raise AssertionError(f"{stream} capture did not resume: {d.control('status')}")


def settled(d: DaemonProcess, timeout: float = 10.0) -> dict:
    """Wait until both streams are up and flowing. A fault can reach the other stream too
    (PulseAudio moves streams to a new default source), so each step starts from here."""
    flowing(d, "agent", timeout)
    return flowing(d, "customer", timeout)


def lost_and_restored(d: DaemonProcess, stream: str, start: int, timeout: float = 8.0) -> None:
    d.event("device_lost", stream=stream, after=start, timeout=timeout)
    d.event("device_restored", stream=stream, after=start, timeout=timeout)


def test_faults_are_survived_and_counted(virtual_headset: PulseServer, tmp_path):  # noqa: F811
    srv = virtual_headset
    d = DaemonProcess(tmp_path, CONFIG, env=srv.full_env())
    try:
        d.event("device_up", stream="agent")
        d.event("device_up", stream="customer")
        d.control("start fault-call")
        restarts = settled(d)["devices"]["agent"]["restarts"]
        assert restarts == 0

        # 1. The server kills our record stream (as when a device is taken away).
        mark = len(d.read())
        assert srv.kill_source_outputs(d.proc.pid, "headset_mic") == 1
        lost_and_restored(d, "agent", mark)
        lost = next(r for r in d.records[mark:] if r["event"] == "device_lost")
        assert "ended by the sound server" in lost["reason"]
        s = flowing(d, "agent")
        assert s["devices"]["agent"]["restarts"] == restarts + 1
        restarts += 1

        # 2. The headset is unplugged (source unloaded: the server silently moves the
        #    stream), then plugged back in. Making it the default source again moves the
        #    far-end stream too, when it is on the fallback default: also lost and restored.
        settled(d)
        mark = len(d.read())
        srv.unload_mic()
        lost = d.event("device_lost", stream="agent", after=mark)
        assert "moved by the sound server" in lost["reason"]
        time.sleep(0.5)
        assert not d.control("status")["devices"]["agent"]["up"]
        srv.reload_mic()
        d.event("device_restored", stream="agent", after=mark)
        s = flowing(d, "agent")
        assert s["devices"]["agent"]["restarts"] == restarts + 1
        restarts += 1

        # 3. The source is suspended: callbacks stall without any error.
        settled(d)
        mark = len(d.read())
        srv.suspend_mic(True)
        lost = d.event("device_lost", stream="agent", after=mark)
        assert "no audio callback" in lost["reason"]
        time.sleep(0.5)
        srv.suspend_mic(False)
        d.event("device_restored", stream="agent", after=mark)
        s = flowing(d, "agent")
        assert s["devices"]["agent"]["restarts"] == restarts + 1

        # 4. The sound server restarts: both streams die, the device list is re-read.
        s = settled(d)
        restarts = s["devices"]["agent"]["restarts"]
        customer_restarts = s["devices"]["customer"]["restarts"]
        mark = len(d.read())
        srv.restart()
        lost_and_restored(d, "agent", mark, timeout=10)
        lost_and_restored(d, "customer", mark, timeout=10)
        s = flowing(d, "agent")
        flowing(d, "customer")
        assert s["devices"]["agent"]["restarts"] > restarts
        assert s["devices"]["customer"]["restarts"] > customer_restarts
        assert s["call_id"] == "fault-call"  # the call went on through every fault

        rc, took = d.terminate(signal.SIGTERM)
        assert rc == 0 and took < 2.0, (rc, took)
        ended = next(r for r in d.records if r["event"] == "call_ended")
        assert ended["call_id"] == "fault-call" and ended["summary"]["duration_s"] > 5
        stopped = d.records[-1]
        assert stopped["event"] == "stopped"
        assert stopped["streams"]["agent"]["restarts"] == s["devices"]["agent"]["restarts"]
    finally:
        d.kill()


def test_device_faults_reach_websocket_clients(virtual_headset: PulseServer, tmp_path):  # noqa: F811
    from urllib.parse import urlsplit

    from websockets.sync.client import connect

    token = "fault-test-token-0123456789"
    config = CONFIG + f'[server]\nport = 0\ntoken = "{token}"\n[metrics]\nenabled = false\n'
    d = DaemonProcess(tmp_path, config, env=virtual_headset.full_env(), servers=True)
    try:
        page = d.event("started")["page"]
        d.event("device_up", stream="agent")
        port = urlsplit(page).port
        with connect(f"ws://127.0.0.1:{port}/?token={token}", open_timeout=5) as ws:
            hello = json.loads(ws.recv(timeout=5))
            assert hello["type"] == "hello"
            assert hello["devices"] == {"agent": "headset_mic", "customer": "speaker_monitor"}
            assert virtual_headset.kill_source_outputs(d.proc.pid, "headset_mic") == 1
            states = []
            deadline = time.monotonic() + 10
            while "restored" not in states and time.monotonic() < deadline:
                msg = json.loads(ws.recv(timeout=10))
                if msg["type"] == "device" and msg["stream"] == "agent":
                    states.append(msg["state"])
                    assert msg["device"] == "headset_mic"
            assert states == ["lost", "restored"], states
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()


def test_device_missing_from_the_reread_list_comes_back(virtual_headset: PulseServer,  # noqa: F811
                                                        tmp_path):
    """After a sound-server restart PortAudio's device list is read again; a device it could
    not reach at that moment (the server still starting, a late headset) is missing from the
    new list while the other stream runs again. It must still come back, without touching the
    running stream's restart count.

    The mic's ALSA PCM reaches the server through a symlink to its socket: removing the link
    makes PortAudio's probe of that one device fail for real, as it does when the server is
    not answering yet."""
    srv = virtual_headset
    link = tmp_path / "mic-server"
    link.symlink_to(srv.runtime / "pulse" / "native")
    asound = tmp_path / "asound.conf"
    asound.write_text(
        f'pcm.headset_mic {{ type pulse  server "unix:{link}"  device "headset_mic" }}\n'
        'pcm.speaker_monitor { type pulse  device "headset_speaker.monitor" }\n')
    env = srv.full_env(ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{asound}")
    d = DaemonProcess(tmp_path / "daemon", CONFIG, env=env)
    try:
        d.event("device_up", stream="agent")
        d.event("device_up", stream="customer")
        s = settled(d)
        customer_restarts = s["devices"]["customer"]["restarts"]
        mark = len(d.read())
        link.unlink()
        srv.restart()
        d.event("device_restored", stream="customer", after=mark, timeout=10)
        missing = d.event("devices_rescanned", after=mark, timeout=10)
        assert missing["missing"] == ["agent"] and missing["found"] == []
        assert missing["reopened"] == ["customer"]
        assert not d.control("status")["devices"]["agent"]["up"]

        link.symlink_to(srv.runtime / "pulse" / "native")
        d.wait_for(lambda r: r.get("event") == "devices_rescanned" and r["found"] == ["agent"],
                   timeout=15, after=mark, what="a re-read that finds the mic")
        d.event("device_restored", stream="agent", after=mark, timeout=10)
        s = settled(d)
        # the quiet reopens for the re-reads are not device faults
        assert s["devices"]["customer"]["restarts"] == customer_restarts + 1
        assert [r["stream"] for r in d.records if r["event"] == "device_up"] \
            == ["agent", "customer"]
        rc, _ = d.terminate()
        assert rc == 0
    finally:
        d.kill()
