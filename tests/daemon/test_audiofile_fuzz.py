"""Property: whatever bytes a file holds, the call reader gives audio or one AudioFileError.

Auditors feed ``callwatch analyze`` whatever a recording system left behind; any other
exception would be a traceback that stops a batch. The budget is fixed (200 examples per
property, no deadline) so the run takes seconds in CI.
"""

from __future__ import annotations

import io
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.audiofile import AudioFileError, CallReader, CallSource

BUDGET = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow])


def _template(fmt: str, subtype: str, channels: int) -> bytes:
    """A valid 1.2 s file of noise, the seed that mutations start from."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((19_200, channels)) * 0.1).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format=fmt, subtype=subtype)
    return buf.getvalue()


TEMPLATES = [
    _template("WAV", "PCM_16", 2),
    _template("WAV", "FLOAT", 2),
    _template("WAV", "PCM_24", 1),
    _template("FLAC", "PCM_16", 2),
]

_names = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_all(path: Path) -> int:
    """Open ``path`` as a call (channel 0 for both sides, so mono files get read too) and
    read it to the end; returns the samples read."""
    n = 0
    with CallReader(CallSource(str(path), str(path), 0, 0)) as reader:
        for agent, customer in reader.blocks():
            assert agent.dtype == customer.dtype == np.float32
            n += len(agent)
    return n


def check(scratch: Path, data: bytes) -> None:
    path = scratch / f"f{next(_names)}.wav"
    path.write_bytes(data)
    try:
        read_all(path)
    except AudioFileError as exc:
        assert str(path) in str(exc)  # every message names the file
    finally:
        path.unlink()


@BUDGET
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(scratch, data):
    check(scratch, data)


@BUDGET
@given(
    tag=st.sampled_from([b"RIFF", b"RF64", b"RIFX"]),
    riff_size=st.integers(0, 2**32 - 1),
    fmt_size=st.sampled_from([0, 14, 16, 18, 40, 2**32 - 1]),
    format_tag=st.sampled_from([0, 1, 3, 6, 7, 0xFFFE, 0xFFFF]),
    channels=st.integers(0, 9),
    rate=st.sampled_from([0, 1, 8000, 16000, 48000, 2**31, 2**32 - 1]),
    bits=st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64]),
    data_size=st.integers(0, 2**32 - 1),
    body=st.binary(max_size=4096),
)
def test_wav_headers_with_any_fields(scratch, tag, riff_size, fmt_size, format_tag, channels,
                                     rate, bits, data_size, body):
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * block_align % 2**32,
                      block_align % 2**16, bits)
    head = tag + struct.pack("<I", riff_size) + b"WAVE"
    head += b"fmt " + struct.pack("<I", fmt_size) + fmt
    head += b"data" + struct.pack("<I", data_size)
    check(scratch, head + body)


@BUDGET
@given(
    template=st.sampled_from(range(len(TEMPLATES))),  # an index: a short failure report
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    keep=st.one_of(st.none(), st.integers(0, 60_000)),
)
def test_real_files_with_corrupted_headers_and_truncation(scratch, template, edits, keep):
    data = bytearray(TEMPLATES[template])
    for pos, value in edits:  # the first 200 bytes hold the headers of every template
        if pos < len(data):
            data[pos] = value
    check(scratch, bytes(data if keep is None else data[:keep]))


def test_the_templates_themselves_are_read(scratch):
    """The mutation seeds are valid, so the mutations start from audio that decodes."""
    for data in TEMPLATES:
        path = scratch / "template"
        path.write_bytes(data)
        assert read_all(path) == 19_200
