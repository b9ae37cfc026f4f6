"""A private PulseAudio server with a virtual headset, for tests that capture real audio.

Layout (no sound hardware needed):

- sink ``headset_speaker``: what the softphone plays; its monitor is the far-end loopback,
  reachable by PortAudio as the ALSA PCM ``speaker_monitor``;
- sink ``mic_feed``: tests play the agent's "voice" into it; ``module-remap-source`` exposes its
  monitor as the real source ``headset_mic`` (ALSA PCM ``headset_mic``).

The server runs in its own temporary directory with its own runtime dir and ALSA config, so
it never touches a desktop session or another test run. :func:`headset` starts one server per
test process (stopped at exit) and exports ``XDG_RUNTIME_DIR``, ``PULSE_SERVER``,
``PULSE_COOKIE`` and ``ALSA_CONFIG_PATH`` into ``os.environ`` so that subprocesses and
sounddevice (re-scanned if already imported) use it. The fault helpers reproduce, for real,
what happens on a workstation: a stream killed by the server, a source unloaded (unplugged
headset), a suspended source, a restarted sound server.

Use the fixture by importing it into a test module: ``from tests.integration.pulse import
virtual_headset  # noqa: F401``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

CI_PA = """\
load-module module-native-protocol-unix auth-anonymous=1 auth-cookie-enabled=0
load-module module-cli-protocol-unix
load-module module-null-sink sink_name=headset_speaker rate=48000 channels=2 \
sink_properties=device.description=Headset_Speaker
load-module module-null-sink sink_name=mic_feed rate=48000 channels=1 \
sink_properties=device.description=Mic_Feed
load-module module-remap-source source_name=headset_mic master=mic_feed.monitor channels=1 \
source_properties=device.description=Headset_Mic
set-default-sink headset_speaker
set-default-source headset_mic
"""

ASOUND = """\
pcm.headset_mic     { type pulse  device "headset_mic"  hint { show on  description "Virtual headset microphone" } }
pcm.speaker_monitor { type pulse  device "headset_speaker.monitor"  hint { show on  description "Headset speaker loopback" } }
pcm.headset_speaker { type pulse  device "headset_speaker"  hint { show on  description "Virtual headset speaker" } }
"""  # noqa: E501

REMAP_ARGS = ("module-remap-source", "source_name=headset_mic", "master=mic_feed.monitor",
              "channels=1", "source_properties=device.description=Headset_Mic")

NEEDED = ("pulseaudio", "pactl", "pacmd", "parec", "paplay")


class PulseServer:
    """One private PulseAudio daemon and its keep-alive readers."""

    def __init__(self, root: Path | None = None) -> None:
        self._own_dir = root is None
        """The directory was made here, so :meth:`stop` removes it (a test run must not leave
        a ``cw-pulse-*`` folder behind in the temp directory)."""
        self.dir = root or Path(tempfile.mkdtemp(prefix="cw-pulse-"))
        self.runtime = self.dir / "runtime"
        self.home = self.dir / "home"
        self.keepalive: list[subprocess.Popen[bytes]] = []
        self.env = {
            "XDG_RUNTIME_DIR": str(self.runtime),
            "PULSE_SERVER": f"unix:{self.runtime}/pulse/native",
            "PULSE_COOKIE": str(self.dir / "cookie"),
            "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{self.dir}/asound.conf",
        }

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> PulseServer:
        missing = [c for c in NEEDED if shutil.which(c) is None]
        if missing:
            raise RuntimeError(f"missing {', '.join(missing)}: apt-get install pulseaudio "
                               "pulseaudio-utils (make test installs them)")
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime, 0o700)
        (self.dir / "ci.pa").write_text(CI_PA)
        (self.dir / "asound.conf").write_text(ASOUND)
        env = self.full_env(HOME=str(self.home))
        subprocess.run(
            ["pulseaudio", "--daemonize=yes", "--use-pid-file=yes", "-n", "-F",
             str(self.dir / "ci.pa"), "--exit-idle-time=-1",
             f"--log-target=file:{self.dir}/pulse.log", "--log-level=notice"],
            env=env, check=True, capture_output=True, timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pactl("info", check=False).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"PulseAudio did not come up; see {self.dir}/pulse.log")
        self.start_keepalive()
        return self

    def start_keepalive(self) -> None:
        """Low-latency readers on both monitors, then suspend/resume each sink: an idle null
        sink renders in ~2 s blocks, which would delay a new stream's first callback."""
        self.stop_keepalive()
        for src in ("headset_speaker.monitor", "mic_feed.monitor"):
            self.keepalive.append(subprocess.Popen(
                ["parec", "--latency-msec=10", "-d", src, "--rate=8000", "--channels=1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.full_env()))
        time.sleep(0.2)
        for sink in ("headset_speaker", "mic_feed"):
            self.pactl("suspend-sink", sink, "1", check=False)
            self.pactl("suspend-sink", sink, "0", check=False)

    def stop_keepalive(self) -> None:
        for p in self.keepalive:
            p.terminate()
        for p in self.keepalive:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        self.keepalive.clear()

    @property
    def pid(self) -> int | None:
        try:
            return int((self.runtime / "pulse" / "pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_server(self) -> None:
        """The sound server dies (crash, user logout, `pulseaudio -k`)."""
        self.stop_keepalive()
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a server that ignores SIGTERM is killed

    def restart(self, down_s: float = 0.0) -> None:
        """Kill the server and start a fresh one with the same devices."""
        self.kill_server()
        time.sleep(down_s)
        self.start()

    def stop(self) -> None:
        """Stop the server for good; remove its directory if this object made it."""
        self.kill_server()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- environment ------------------------------------------------------------------------

    def full_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra)
        return env

    def export(self) -> None:
        """Point this process (and sounddevice, if already imported) at the server."""
        os.environ.update(self.env)
        if "sounddevice" in sys.modules:
            sd = sys.modules["sounddevice"]
            sd._terminate()
            sd._initialize()

    # -- commands ---------------------------------------------------------------------------

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pactl", *args], env=self.full_env(), capture_output=True,
                              text=True, check=check, timeout=10)

    def pacmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pacmd", *args], env=self.full_env(), capture_output=True,
                              text=True, check=True, timeout=10)

    def play(self, sink: str, path: str | os.PathLike[str]) -> subprocess.Popen[bytes]:
        """Start playing a file into a sink (``mic_feed`` = agent voice, ``headset_speaker`` =
        far end)."""
        return subprocess.Popen(["paplay", "-d", sink, str(path)], env=self.full_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def source_outputs(self, pid: int | None = None) -> list[dict[str, str]]:
        """Record streams (index, source name, properties), optionally of one process."""
        names = {}
        for line in self.pactl("list", "short", "sources").stdout.splitlines():
            parts = line.split("\t")
            names[parts[0]] = parts[1]
        out: list[dict[str, str]] = []
        cur: dict[str, str] | None = None
        for raw in self.pactl("list", "source-outputs").stdout.splitlines():
            line = raw.strip()
            if raw.startswith("Source Output #"):
                cur = {"index": raw.split("#", 1)[1].strip()}
                out.append(cur)
            elif cur is not None and " = " in line:
                k, v = line.split(" = ", 1)
                cur[k] = v.strip('"')
            elif cur is not None and line.startswith("Source:"):
                idx = line.split(":", 1)[1].strip()
                cur["source"] = names.get(idx, idx)
        if pid is not None:
            out = [o for o in out if o.get("application.process.id") == str(pid)]
        return out

    def kill_source_outputs(self, pid: int, source: str | None = None) -> int:
        """The server kills a process's record streams (optionally only those on ``source``)."""
        n = 0
        for o in self.source_outputs(pid):
            if source is None or o.get("source") == source:
                self.pacmd("kill-source-output", o["index"])
                n += 1
        return n

    def module_index(self, needle: str) -> str | None:
        for line in self.pactl("list", "short", "modules").stdout.splitlines():
            if needle in line:
                return line.split("\t")[0]
        return None

    def unload_mic(self) -> None:
        """Unplug the headset mic: its source disappears (streams on it are moved)."""
        idx = self.module_index("source_name=headset_mic")
        if idx is None:
            raise RuntimeError("headset_mic is not loaded")
        self.pactl("unload-module", idx)

    def reload_mic(self) -> None:
        """Plug it back in (and make it the default source again)."""
        self.pactl("load-module", *REMAP_ARGS)
        self.pactl("set-default-source", "headset_mic")

    def suspend_mic(self, on: bool) -> None:
        """Suspend (``True``) or resume the mic's sink: record streams on it stall silently."""
        self.pactl("suspend-sink", "mic_feed", "1" if on else "0")


_SERVER: PulseServer | None = None


def headset() -> PulseServer:
    """The test process's virtual headset, started on first use and stopped at exit."""
    global _SERVER
    if _SERVER is None:
        server = PulseServer()
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)
        server.export()
        _SERVER = server
    return _SERVER


@pytest.fixture(scope="session")
def virtual_headset() -> PulseServer:
    """A running PulseAudio with the virtual headset; env vars exported for this process."""
    server = headset()
    if server.pid is None or server.pactl("info", check=False).returncode != 0:
        server.start()
    return server
