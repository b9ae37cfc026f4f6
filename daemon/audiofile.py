"""Reading recorded calls: stereo files or two mono files, streamed block by block.

libsndfile (through soundfile) decodes WAV in every PCM/float flavour, FLAC, OGG and more;
this module only adds what a call analyser needs on top: mapping channels to the agent and the
customer, and turning every way a file can be wrong into one clear :class:`AudioFileError`
that names the file, the problem and the fix. Files are never loaded whole.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import soundfile as sf

from dsp.levels import to_float32

BLOCK_S = 10.0
"""Seconds of audio read per block: large enough to amortise per-call overhead."""

PCM16_FORMATS = frozenset({"WAV", "WAVEX", "RF64"})
"""Containers whose 16-bit PCM is read as int16 and scaled here (see :meth:`CallReader.blocks`)."""

MIN_DURATION_S = 1.0
"""Shortest call analysed. No detector can fire on less (the shortest reportable condition,
dead air or a dead mic at their lowest settings, lasts one second, and a talk-over needs two
spurts), and levels measured on fewer than 50 frames mean nothing: a shorter file would get a
"clean" report that is really no report at all."""

DURATION_MISMATCH_S = 1.0
"""Two mono files of one call whose lengths differ by more than this get a warning: recorders
of the two sides stop a fraction of a second apart, but seconds more on one side mean the
files are not of the same stretch of the call (or not of the same call), and only the length
of the shorter one is analysed."""


TWO_MONO_FILES = "pass --agent AGENT.wav --customer CUSTOMER.wav for two mono files"
"""How ``callwatch analyze`` takes a call whose sides are in two mono files: the fix for a
mono file given as a stereo call, unless the caller takes calls some other way."""


ErrorCode = Literal["not_found", "permission", "unreadable", "empty", "not_audio", "corrupt",
                    "too_short", "channels", "internal"]
"""Why a file could not be analysed, in one word a batch script can branch on (the
``error.code`` of ``callwatch analyze --json``; the message says the same for a reader):

- ``not_found``: no such file; ``permission``: the system refused to read it;
- ``unreadable``: any other reason it could not be read (a directory, a FIFO, an I/O error);
- ``empty``: no audio at all (0 bytes, or a header only);
- ``not_audio``: not in a format that is decoded (convert it first);
- ``corrupt``: audio whose container or data is damaged;
- ``too_short``: under :data:`MIN_DURATION_S`;
- ``channels``: the channels asked for are not in the file (a mono file as a stereo call);
- ``internal``: a defect of callwatch, not of the file.
"""


class AudioFileError(Exception):
    """A recorded call that cannot be analysed; the message names the file and the fix, and
    ``code`` (an :data:`ErrorCode`) says which kind of problem it is, for scripts. The default
    only serves the errors of a command's options, which are not one file's and have no code
    in any output."""

    def __init__(self, message: str, code: ErrorCode = "unreadable") -> None:
        super().__init__(message)
        self.code: ErrorCode = code


def display_path(path: str) -> str:
    """``path`` printable on any terminal or log: bytes that are not UTF-8 (kept by Python as
    lone surrogates) become ``\\xNN`` escapes instead of a ``UnicodeEncodeError`` at print."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
            return display_path(self.agent_path)
        return f"{display_path(self.agent_path)} + {display_path(self.customer_path)}"


class _PatchedFile(io.RawIOBase):
    """A read-only file with a few header bytes replaced, for libsndfile's virtual I/O: lets a
    WAV whose recorder crashed before writing its sizes be read without copying it."""

    def __init__(self, path: str, patches: dict[int, bytes]) -> None:
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._patches = patches

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        pos = self._f.tell()
        data = bytearray(self._f.read(size))
        for at, patch in self._patches.items():
            lo, hi = max(at, pos), min(at + len(patch), pos + len(data))
            if lo < hi:
                data[lo - pos : hi - pos] = patch[lo - at : hi - at]
        return bytes(data)

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


@dataclass(slots=True)
class _Riff:
    """What the RIFF walk found: header patches for an unfinished or truncated WAV, and why."""

    patches: dict[int, bytes] = field(default_factory=dict)
    warning: str | None = None
    truncated: tuple[int, int] | None = None
    """(bytes of audio the header declares, whole sample frames' bytes the file holds) of a
    WAV cut short: its warning gives the seconds present, known once libsndfile opens it."""


def _whole_frames(data_bytes: int, block_align: int) -> int:
    """``data_bytes`` cut to whole sample frames (``block_align`` bytes each, when the fmt
    chunk gave it): a partial last frame of a file cut mid-write is not audio."""
    return data_bytes - data_bytes % block_align if block_align > 0 else data_bytes


def _data_patches(data_at: int, data_bytes: int) -> dict[int, bytes]:
    """Header patches that make the RIFF and data sizes those of ``data_bytes`` of audio after
    the data chunk's header at ``data_at``, with nothing after them."""
    return {4: struct.pack("<I", data_at + data_bytes), data_at + 4: struct.pack("<I", data_bytes)}


def _check_riff(path: str) -> _Riff:
    """Find a truncated WAV, which libsndfile would otherwise read short without a word (and
    count as longer than it is), and an unfinished one (data size 0 but audio after it), which
    it would call empty; both are read as far as their audio goes, with a warning."""
    size = os.path.getsize(path)
    name = display_path(path)
    block_align = 0
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return _Riff()  # not RIFF/WAVE: leave it to libsndfile
        if head[:4] == b"RF64":
            return _Riff()
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"fmt " and chunk_size >= 14:
                fmt = f.read(14)
                if len(fmt) == 14:
                    (block_align,) = struct.unpack_from("<H", fmt, 12)
            if chunk_id == b"data":
                have = size - pos - 8
                if chunk_size == 0 and have > 0:
                    return _Riff(
                        _data_patches(pos, _whole_frames(have, block_align)),
                        f"{name}: WAV header says 0 bytes of audio but {have} follow (the "
                        "recorder did not finish the file); analysing what is there",
                    )
                if chunk_size > have and chunk_size != 0xFFFFFFFF:
                    # Cut short (an interrupted copy, a recorder that crashed): the call up to
                    # the cut is still a call, so it is read, as sox and ffmpeg do, and warned of.
                    whole = _whole_frames(have, block_align)
                    return _Riff(_data_patches(pos, whole), truncated=(chunk_size, whole))
                return _Riff()
            pos += 8 + chunk_size + (chunk_size & 1)
        raise AudioFileError(f"{name}: WAV file has no audio data chunk; it is corrupt or empty",
                             "corrupt")


def _truncated_warning(name: str, f: sf.SoundFile, declared: int, present: int) -> str:
    """What an auditor must know of a report on a WAV cut short: how much of the call is
    there, how much the header promised, and that the figures cover only the part present."""
    present_s = f.frames / f.samplerate
    declared_s = present_s * declared / present
    return (f"{name}: truncated WAV: the file ends early, after {present_s:.1f} s of audio "
            f"(its header declares {declared_s:.1f} s); the report covers only those "
            f"{present_s:.1f} s; re-copy the recording if a whole copy exists")


def _os_error(name: str, exc: OSError) -> AudioFileError:
    """The one-line message for an operating-system refusal, with the fix for it."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return AudioFileError(
            f"{name}: permission denied; make the file (and its directories) readable by "
            "this user, e.g. chmod o+r, or run as its owner",
            "permission",
        )
    return AudioFileError(f"{name}: cannot read: {exc.strerror or exc}", "unreadable")


def open_audio(path: str, warnings: list[str] | None = None) -> sf.SoundFile:
    """Open one file for streaming, or raise :class:`AudioFileError` saying what is wrong.

    Problems that do not stop the analysis (an unfinished WAV header, a WAV cut short) are
    appended to ``warnings`` as one line each.
    """
    name = display_path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioFileError(f"{name}: no such file; check the path", "not_found") from None
    except OSError as exc:
        raise _os_error(name, exc) from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioFileError(f"{name}: is a directory; pass audio files (e.g. {name}/*.wav)",
                             "unreadable")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device")
        raise AudioFileError(
            f"{name}: not a regular file ({kind}); save the recording to a file and pass that",
            "unreadable",
        )
    if st.st_size == 0:
        raise AudioFileError(f"{name}: empty file (0 bytes); the recording is missing", "empty")
    try:
        riff = _check_riff(path)
        # Bytes, not str: libsndfile takes the name as it is on disk (soundfile would encode a
        # str as UTF-8, which a name that is not UTF-8 cannot be).
        source: bytes | _PatchedFile = (_PatchedFile(path, riff.patches) if riff.patches
                                        else os.fsencode(path))
        f = sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        detail = str(exc).split(":", 1)[-1].strip().rstrip(".") or "unreadable"
        raise AudioFileError(
            f"{name}: cannot decode audio ({detail}); supported: WAV (PCM 8/16/24/32-bit, "
            "float, G.711 u-law/A-law), FLAC, OGG, MP3, AIFF; convert anything else first, "
            "e.g. ffmpeg -i IN OUT.wav",
            "not_audio",
        ) from None
    except OSError as exc:
        raise _os_error(name, exc) from None
    except (RuntimeError, ValueError, struct.error) as exc:
        raise AudioFileError(f"{name}: cannot decode audio ({exc}); the file is corrupt",
                             "corrupt") from None
    if riff.warning and warnings is not None:
        warnings.append(riff.warning)
    if riff.truncated and riff.truncated[1] > 0 and warnings is not None and f.frames > 0:
        warnings.append(_truncated_warning(name, f, *riff.truncated))
    if f.frames <= 0:
        f.close()
        raise AudioFileError(f"{name}: holds no audio frames (a header only): the recorder "
                             "saved nothing; take the call from the recorder again", "empty")
    return f


class CallReader:
    """Yields ``(agent, customer)`` float32 blocks of about :data:`BLOCK_S` seconds."""

    def __init__(self, source: CallSource, mono_fix: str = TWO_MONO_FILES) -> None:
        """``mono_fix``: what the command takes instead when a stereo call turns out to be
        mono (its options differ: analyze takes two mono files, a replay does not)."""
        self.source = source
        self.warnings: list[str] = []
        """Problems that do not stop the analysis, one line each, for the caller to show."""
        self._files: list[sf.SoundFile] = []
        self._finite = {"agent": 0, "customer": 0}
        try:
            a = open_audio(source.agent_path, self.warnings)
            self._files.append(a)
            if source.customer_path == source.agent_path:
                c = a
            else:
                c = open_audio(source.customer_path, self.warnings)
                self._files.append(c)
            one_file = a is c
            self._check_channel(a, source.agent_path, source.agent_channel, "--agent-channel",
                                one_file, mono_fix)
            self._check_channel(c, source.customer_path, source.customer_channel,
                                "--customer-channel", one_file, mono_fix)
            self._agent, self._customer = a, c
            if a is not c:
                self._check_durations()
            elif a.channels > 2:
                # Channels 2 and up could hold a party too (or a mix): say which two are read.
                pick = (f"; pick others with --agent-channel N and --customer-channel N "
                        f"(0..{a.channels - 1})" if mono_fix == TWO_MONO_FILES else "")
                self.warnings.append(
                    f"{source.label}: {a.channels} channels; analysing channel "
                    f"{source.agent_channel} as the agent and {source.customer_channel} as the "
                    f"customer, the rest ignored{pick}")
            if self.duration_s < MIN_DURATION_S:
                frames = min(a.frames, c.frames)
                raise AudioFileError(
                    f"{source.label}: too short to analyse: {self.duration_s:.3f} s "
                    f"({frames} sample(s)); a call needs at least {MIN_DURATION_S:g} s",
                    "too_short",
                )
        except BaseException:
            self.close()
            raise

    def _check_durations(self) -> None:
        """Warn when the two files of a call differ in length: the shorter one sets the length
        analysed, and the rest of the longer one would be left out without a word."""
        sides = {"agent": (self._agent, self.source.agent_path),
                 "customer": (self._customer, self.source.customer_path)}
        length = {side: f.frames / f.samplerate for side, (f, _) in sides.items()}
        short, long = sorted(length, key=length.__getitem__)
        gap = length[long] - length[short]
        if gap > DURATION_MISMATCH_S:
            self.warnings.append(
                f"{self.source.label}: the {short} side ({display_path(sides[short][1])}, "
                f"{length[short]:.1f} s) is {gap:.1f} s shorter than the {long} side "
                f"({length[long]:.1f} s); only the first {length[short]:.1f} s of the call are "
                f"analysed, the {long}'s last {gap:.1f} s are left out; check that both files "
                "are of the same call"
            )

    @staticmethod
    def _check_channel(f: sf.SoundFile, path: str, channel: int, flag: str,
                       one_file: bool, mono_fix: str) -> None:
        path = display_path(path)
        if one_file and f.channels == 1 and channel != 0:
            raise AudioFileError(
                f"{path}: mono file, but a stereo call (agent and customer) is needed; "
                f"{mono_fix}",
                "channels",
            )
        if not 0 <= channel < f.channels:
            raise AudioFileError(
                f"{path}: {flag} {channel} is out of range: the file has {f.channels} "
                f"channel(s), 0..{f.channels - 1}",
                "channels",
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
        """The call block by block; at the end, raises :class:`AudioFileError` if a side held
        no finite sample at all (an all-NaN float file would otherwise pass for silence)."""
        done_s = 0.0
        blocks = self._raw_blocks()
        # Both sides sample for sample the same so far; which side had a sample other than 0.
        same = self._agent.samplerate == self._customer.samplerate
        sounded = {"agent": False, "customer": False}
        while True:
            try:
                agent, customer = next(blocks)
            except StopIteration:
                break
            except (RuntimeError, OSError) as exc:  # libsndfile errors mid-file
                raise AudioFileError(
                    f"{self.source.label}: audio data is corrupt after {done_s:.1f} s "
                    f"({str(exc).strip()}); re-export the recording",
                    "corrupt",
                ) from None
            done_s += len(agent) / self._agent.samplerate
            for side, x in (("agent", agent), ("customer", customer)):
                if x.dtype == np.int16:  # PCM: every sample is finite
                    self._finite[side] += len(x)
                else:
                    self._finite[side] += int(np.count_nonzero(np.isfinite(x)))
                if not sounded[side] and np.any(x):
                    sounded[side] = True
            if same and not (agent.shape == customer.shape and np.array_equal(agent, customer)):
                same = False
            yield to_float32(agent), to_float32(customer)
        dead = [side for side, n in self._finite.items() if n == 0]
        if dead:
            raise AudioFileError(
                f"{self.source.label}: every {' and '.join(dead)} sample is NaN or infinite; "
                "the recording is corrupt, re-export it",
                "corrupt",
            )
        self._warn_content(same and sounded["agent"], sounded)

    def _warn_content(self, same: bool, sounded: dict[str, bool]) -> None:
        """What an auditor should know of a call whose channels cannot be two parties: one
        voice copied to both sides (a mono recording saved as stereo), or a side that is
        digital silence from start to end (an empty channel, the wrong channel picked)."""
        label = self.source.label
        if same:
            self.warnings.append(
                f"{label}: the agent and customer sides are identical, sample for sample (a "
                "mono recording saved as stereo?): talk-over, echo and talk shares mean "
                "nothing here; analyse each party's own recording (--agent/--customer)")
        for side, flag in (("agent", "--agent-channel"), ("customer", "--customer-channel")):
            if not sounded[side]:
                self.warnings.append(
                    f"{label}: the {side} side is digital silence from start to end (every "
                    f"sample 0): an empty channel, or pick another with {flag} N")

    @staticmethod
    def _dtype(f: sf.SoundFile) -> str:
        """How to read ``f``: 16-bit PCM WAV as int16, scaled to float32 by
        :func:`dsp.levels.to_float32` (exactly libsndfile's own scaling, 2^-15) for the
        channel used only; everything else as float32 from libsndfile."""
        return "int16" if f.subtype == "PCM_16" and f.format in PCM16_FORMATS else "float32"

    def _raw_blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Blocks of the two channels as read: int16 or float32 (see :meth:`_dtype`)."""
        a, c = self._agent, self._customer
        sa, sc = self.source.agent_channel, self.source.customer_channel
        if a is c:
            n = int(a.samplerate * BLOCK_S)
            for block in a.blocks(blocksize=n, dtype=self._dtype(a), always_2d=True):
                yield block[:, sa], block[:, sc]
            return
        na, nc = int(a.samplerate * BLOCK_S), int(c.samplerate * BLOCK_S)
        da, dc = self._dtype(a), self._dtype(c)
        while True:
            xa = a.read(na, dtype=da, always_2d=True)
            xc = c.read(nc, dtype=dc, always_2d=True)
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
