"""Live replay: a recorded call fed through the live path at real-time pace.

A thread reads the file in capture-sized blocks and writes them into the same rings, with the
same kind of timestamps, as the audio callbacks would, so the processing loop, the aligner,
calls, alerts and metrics run exactly as in production. ``speed`` > 1 paces faster (demos,
benchmarks); unlike a device, the reader waits when a ring is full, so nothing is dropped at
any speed.
"""

from __future__ import annotations

import threading
import time
import traceback

import numpy as np

from daemon.audiofile import TWO_MONO_FILES, AudioFileError, CallReader, CallSource
from daemon.epoch import Epoch


class ReplayStream:
    """Stands in for a capture stream: same ``epoch`` / ``up`` surface, always up."""

    def __init__(self, name: str, label: str, rate: int, ring_s: float) -> None:
        self.name = name
        self.label = label
        self.rate = rate
        self.epoch = Epoch(max(4096, round(ring_s * rate)), rate)
        self.up = True


class ReplayFeeder:
    """Paces a stereo (or two mono) recording into two :class:`ReplayStream` rings."""

    def __init__(self, source: CallSource, speed: float, block_s: float, ring_s: float,
                 mono_fix: str = TWO_MONO_FILES) -> None:
        """``mono_fix``: the fix to name when ``source`` is one mono file (what the command
        that replays takes instead); raises AudioFileError for unusable files."""
        self.reader = CallReader(source, mono_fix)
        self.speed = speed
        self.block_s = block_s
        self.agent = ReplayStream("agent", source.agent_path, self.reader.agent_rate, ring_s)
        self.customer = ReplayStream("customer", source.customer_path,
                                     self.reader.customer_rate, ring_s)
        self.duration_s = self.reader.duration_s
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay", daemon=True)
        self.error: str | None = None
        """Why the file could not be replayed to its end (bad input: exit 2)."""
        self.crash: str | None = None
        """The traceback of an unexpected exception that ended the replay (a bug: exit 1)."""
        self.warnings = list(self.reader.warnings)
        """Problems reading the file that did not stop it (an unfinished WAV header)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.reader.close()

    def _write(self, stream: ReplayStream, x: np.ndarray, t: float) -> bool:
        ring = stream.epoch.ring
        while ring.capacity - ring.available() < len(x):
            if self._stop.wait(0.005):
                return False
        stream.epoch.push(x.reshape(-1, 1), t)
        return True

    def _run(self) -> None:
        start = time.monotonic()
        played = 0.0  # seconds of audio written
        try:
            for agent, customer in self.reader.blocks():
                na = max(1, round(self.block_s * self.agent.rate))
                nc = max(1, round(self.block_s * self.customer.rate))
                ia = ic = 0
                while ia < len(agent) or ic < len(customer):
                    due = start + played / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    if self._stop.is_set():
                        return
                    a, c = agent[ia:ia + na], customer[ic:ic + nc]
                    if len(a) and not self._write(
                            self.agent, a, self.agent.epoch.n_seen / self.agent.rate):
                        return
                    if len(c) and not self._write(
                            self.customer, c, self.customer.epoch.n_seen / self.customer.rate):
                        return
                    ia += na
                    ic += nc
                    played += max(len(a) / self.agent.rate, len(c) / self.customer.rate)
        except AudioFileError as exc:  # found only at the end of the file (all NaN)
            self.error = str(exc)
        except (RuntimeError, OSError) as exc:
            self.error = f"{self.reader.source.label}: audio data is corrupt ({exc})"
        except Exception:  # a bug: the run must not pass for a replay that ended early
            self.crash = traceback.format_exc()
        finally:
            self.done.set()
