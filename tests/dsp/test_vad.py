"""The VAD engines: speech vs noise on real recordings, chunking invariance, errors."""

from __future__ import annotations

import builtins
import importlib.util
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from dsp import vad
from dsp.resample import Resampler
from dsp.settings import DetectorSettings

RAW = Path("/usr/share/codec2/raw")
FRAME = 320


def _available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


NEURAL = [
    pytest.param("earshot", marks=pytest.mark.skipif(not _available("earshot"),
                                                     reason="earshot not installed")),
    pytest.param("silero", marks=pytest.mark.skipif(
        not (_available("onnxruntime") and _available("silero_vad")),
        reason="onnxruntime/silero-vad not installed")),
]


def _frames(x: np.ndarray) -> np.ndarray:
    n = x.size // FRAME
    return x[: n * FRAME].reshape(n, FRAME)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    pcm = np.fromfile(RAW / "hts1a.raw", "<i2").astype(np.float32) / 32768.0
    r = Resampler(8000, 16000)
    out = np.concatenate([r.process(pcm), r.flush()])
    return _frames(vad.to_pcm16(out))


def _noise(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.standard_normal((n, FRAME)) * 300).astype(np.int16)


@pytest.mark.parametrize("name", ["webrtc", *NEURAL])
def test_speech_vs_noise(name: str, speech: np.ndarray) -> None:
    detector = vad.create_vad(name, 2)
    said = np.ones(len(speech), bool)
    detector.classify(speech, said)
    detector = vad.create_vad(name, 2)
    quiet = np.ones(300, bool)
    detector.classify(_noise(300), quiet)
    assert said.mean() > 0.5, said.mean()
    assert quiet.mean() < 0.1, quiet.mean()


@pytest.mark.parametrize("name", NEURAL)
def test_same_verdicts_however_split(name: str, speech: np.ndarray) -> None:
    stream = np.concatenate([speech, _noise(500)])[:500]
    whole = np.ones(len(stream), bool)
    vad.create_vad(name, 2).classify(stream, whole)
    rng = np.random.default_rng(7)
    for _ in range(2):
        cuts = np.sort(rng.choice(np.arange(1, len(stream)), 12, replace=False))
        detector = vad.create_vad(name, 2)
        parts = []
        for piece in np.split(stream, cuts):
            mask = np.ones(len(piece), bool)
            detector.classify(piece, mask)
            parts.append(mask)
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_bad_name() -> None:
    with pytest.raises(ValueError, match="unknown VAD engine 'nope'"):
        vad.create_vad("nope", 2)


def test_missing_package_names_it_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_earshot(name, *args, **kwargs):
        if name == "earshot":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_earshot)
    monkeypatch.setattr(vad.importlib, "import_module", lambda n: no_earshot(n))
    with pytest.raises(vad.MissingVadPackage, match=r"'earshot'.*callwatch\[neural\]"):
        vad.create_vad("earshot", 2)


def test_private_webrtcvad_module_still_there() -> None:
    assert importlib.util.find_spec("_webrtcvad") is not None, (
        "webrtcvad-wheels no longer ships the C module _webrtcvad: switch dsp.vad.WebRtcVad to "
        "the public webrtcvad.Vad")


def test_setting_lists_the_engines() -> None:
    field = next(f for f in fields(DetectorSettings) if f.name == "vad")
    assert field.metadata["choices"] == vad.ENGINES
    assert DetectorSettings().vad == "webrtc"
