"""Reading recorded calls: stereo files or two mono files, streamed block by block.

libsndfile (through soundfile) decodes WAV in every PCM/float flavour, FLAC, OGG and more;
this module only adds what a call analyser needs on top: mapping channels to the agent and the
customer, and turning every way a file can be wrong into one clear :class:`AudioFileError`
that names the file, the problem and the fix. Files are never loaded whole.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

BLOCK_S = 10.0
"""Seconds of audio read per block: large enough to amortise per-call overhead."""


class AudioFileError(Exception):
    """A recorded call that cannot be analysed; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class CallSource:
    """Where the agent's and the customer's audio come from."""

    agent_path: str
    customer_path: str
    agent_channel: int = 0
    customer_channel: int = 1

    @property
    def label(self) -> str:
        if self.agent_path == self.customer_path:
            return self.agent_path
        return f"{self.agent_path} + {self.customer_path}"


def _check_riff(path: str) -> None:
    """Catch a truncated WAV, which libsndfile would otherwise read short without a word."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return  # not RIFF/WAVE: leave it to libsndfile
        if head[:4] == b"RF64":
            return
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                have = size - pos - 8
                if chunk_size > have and chunk_size != 0xFFFFFFFF:
                    raise AudioFileError(
                        f"{path}: truncated WAV: the header declares {chunk_size} bytes of "
                        f"audio but the file holds {have}; re-export or re-copy the recording"
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)
        raise AudioFileError(f"{path}: WAV file has no audio data chunk; it is corrupt or empty")


def open_audio(path: str) -> sf.SoundFile:
    """Open one file for streaming, or raise :class:`AudioFileError` saying what is wrong."""
    if not os.path.exists(path):
        raise AudioFileError(f"{path}: no such file; check the path")
    if os.path.isdir(path):
        raise AudioFileError(f"{path}: is a directory; pass audio files (e.g. {path}/*.wav)")
    if os.path.getsize(path) == 0:
        raise AudioFileError(f"{path}: empty file (0 bytes); the recording is missing")
    _check_riff(path)
    try:
        f = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        detail = str(exc).split(":", 1)[-1].strip() or "unreadable"
        raise AudioFileError(
            f"{path}: cannot decode audio ({detail}); supported: WAV (PCM 8/16/24/32-bit, "
            "float), FLAC, OGG/Vorbis, AIFF"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise AudioFileError(f"{path}: cannot read: {exc}") from None
    if f.frames == 0:
        f.close()
        raise AudioFileError(f"{path}: holds no audio frames; the recording is empty")
    return f


class CallReader:
    """Yields ``(agent, customer)`` float32 blocks of about :data:`BLOCK_S` seconds."""

    def __init__(self, source: CallSource) -> None:
        self.source = source
        self._files: list[sf.SoundFile] = []
        try:
            a = open_audio(source.agent_path)
            self._files.append(a)
            if source.customer_path == source.agent_path:
                c = a
            else:
                c = open_audio(source.customer_path)
                self._files.append(c)
            self._check_channel(a, source.agent_path, source.agent_channel, "--agent-channel")
            self._check_channel(
                c, source.customer_path, source.customer_channel, "--customer-channel"
            )
        except BaseException:
            self.close()
            raise
        self._agent, self._customer = a, c

    @staticmethod
    def _check_channel(f: sf.SoundFile, path: str, channel: int, flag: str) -> None:
        if f.channels == 1 and channel != 0:
            raise AudioFileError(
                f"{path}: mono file, but a stereo call (agent and customer) is needed; "
                "pass --agent AGENT.wav --customer CUSTOMER.wav for two mono files"
            )
        if not 0 <= channel < f.channels:
            raise AudioFileError(
                f"{path}: {flag} {channel} is out of range: the file has {f.channels} "
                f"channel(s), 0..{f.channels - 1}"
            )

    @property
    def agent_rate(self) -> int:
        return int(self._agent.samplerate)

    @property
    def customer_rate(self) -> int:
        return int(self._customer.samplerate)

    @property
    def duration_s(self) -> float:
        return min(self._agent.frames / self._agent.samplerate,
                   self._customer.frames / self._customer.samplerate)

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        a, c = self._agent, self._customer
        sa, sc = self.source.agent_channel, self.source.customer_channel
        if a is c:
            n = int(a.samplerate * BLOCK_S)
            for block in a.blocks(blocksize=n, dtype="float32", always_2d=True):
                yield block[:, sa], block[:, sc]
            return
        na, nc = int(a.samplerate * BLOCK_S), int(c.samplerate * BLOCK_S)
        while True:
            xa = a.read(na, dtype="float32", always_2d=True)
            xc = c.read(nc, dtype="float32", always_2d=True)
            if not len(xa) and not len(xc):
                return
            yield xa[:, sa], xc[:, sc]

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def __enter__(self) -> CallReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
