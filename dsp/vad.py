"""Voice activity detectors behind one interface, and the factory the pipeline builds them with.

Engines: ``webrtc`` (WebRTC's GMM detector, the default, always installed), ``earshot`` and
``silero`` (neural, optional: ``pip install 'callwatch[neural]'``).

The webrtc engine drives ``_webrtcvad``, the C extension of the webrtcvad(-wheels)
distribution, directly: importing the public ``webrtcvad`` wrapper pulls in
``importlib.metadata`` for a version string, measured at ~27 ms of start-up against 0.3 ms for
the C module, on every ``callwatch analyze`` run; per frame the wrapper costs only ~0.2 µs more
(1.9 vs 1.7 µs). The C calls are the same ones the wrapper makes; a test fails if the private
module is renamed.

The neural engines are stateful and work on their own windows (earshot 256 samples, silero
512), not on our 20 ms frames. They therefore see every frame in order, and windows sit at
fixed absolute sample positions, so the verdicts do not depend on how the caller splits the
stream. A frame's score is the highest score of the windows that end inside it; a frame in
which no window ends keeps the score of the latest window before it. Scores go through a
hysteresis (speech starts at ``on``, ends below ``on - NEURAL_HYSTERESIS``), as silero's own
iterator does; ``mode`` 0-3 picks ``on`` from :data:`NEURAL_THRESHOLDS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any, Protocol

import _webrtcvad
import numpy as np

from dsp import ANALYSIS_RATE

ENGINES = ("webrtc", "earshot", "silero")
"""The names :func:`create_vad` accepts (and the ``vad`` setting's choices)."""

NEURAL_THRESHOLDS = (0.3, 0.4, 0.5, 0.7)
"""Speech-start probability per mode 0 (lenient) to 3 (strict); 0.5 is both projects' default."""

NEURAL_HYSTERESIS = 0.15
"""Speech ends once the score falls this far below the start threshold (silero's choice)."""

INSTALL_HINT = "pip install 'callwatch[neural]'"


class VoiceActivityDetector(Protocol):
    """What the pipeline needs from a VAD engine."""

    def set_mode(self, mode: int) -> None:
        """Aggressiveness 0 (lenient) to 3 (strict)."""

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        """Clear ``candidates[k]`` for every frame of ``(n, frame_len)`` int16 judged non-speech."""


class MissingVadPackage(ImportError):
    """An optional engine's package is not installed."""


def _check_mode(mode: int) -> int:
    if mode not in (0, 1, 2, 3):
        raise ValueError(f"VAD mode must be 0, 1, 2 or 3, not {mode!r}")
    return mode


def _require(module: str, package: str, engine: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingVadPackage(
            f"the {engine!r} VAD engine needs the Python package {package!r}: {INSTALL_HINT}"
        ) from exc


class WebRtcVad:
    """Frame-level speech/non-speech decisions from WebRTC's GMM voice activity detector."""

    def __init__(self, mode: int) -> None:
        self._vad = _webrtcvad.create()
        _webrtcvad.init(self._vad)
        self.set_mode(mode)

    def set_mode(self, mode: int) -> None:
        _webrtcvad.set_mode(self._vad, _check_mode(mode))

    def is_speech(self, frame_pcm16: bytes) -> bool:
        """One 10/20/30 ms frame of 16-bit little-endian PCM at :data:`dsp.ANALYSIS_RATE`."""
        return bool(_webrtcvad.process(self._vad, ANALYSIS_RATE, frame_pcm16,
                                       len(frame_pcm16) // 2))

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        """Only the candidate frames are asked, one C call each (webrtcvad keeps little state).
        Each row goes in as it is (the C function reads any contiguous buffer): a copy to
        ``bytes`` per frame cost a third of the call."""
        process, vad, rate = _webrtcvad.process, self._vad, ANALYSIS_RATE
        frames = np.ascontiguousarray(frames_pcm16, dtype="<i2")
        length = frames.shape[1]
        for k in np.flatnonzero(candidates).tolist():
            if not process(vad, rate, frames[k], length):
                candidates[k] = False


class _WindowedVad:
    """Re-frames the stream into the model's windows and turns window scores into frame
    verdicts (see the module docstring); subclasses give :meth:`_score`."""

    window = 0

    def __init__(self, mode: int) -> None:
        self._pending = np.zeros(0, np.int16)
        self._last_score = 0.0
        self._speaking = False
        self.set_mode(mode)

    def set_mode(self, mode: int) -> None:
        self.on = NEURAL_THRESHOLDS[_check_mode(mode)]
        self.off = self.on - NEURAL_HYSTERESIS

    def _score(self, window: np.ndarray) -> float:
        raise NotImplementedError

    def frame_scores(self, frames_pcm16: np.ndarray) -> np.ndarray:
        """One score per frame, every frame in order."""
        n, length = frames_pcm16.shape
        stream = np.concatenate([self._pending, frames_pcm16.reshape(-1)])
        lead = self._pending.size  # samples of the stream before this call's first frame
        scores = np.empty(n)
        w = self.window
        done = 0  # windows consumed from ``stream``
        for k in range(n):
            frame_end = lead + (k + 1) * length
            best = -1.0
            while (done + 1) * w <= frame_end:
                best = max(best, self._score(stream[done * w:(done + 1) * w]))
                done += 1
            if best >= 0.0:
                self._last_score = best
            scores[k] = self._last_score
        self._pending = stream[done * w:].copy()
        return scores

    def classify(self, frames_pcm16: np.ndarray, candidates: np.ndarray) -> None:
        for k, score in enumerate(self.frame_scores(frames_pcm16).tolist()):
            self._speaking = score >= (self.off if self._speaking else self.on)
            if not self._speaking:
                candidates[k] = False


class EarshotVad(_WindowedVad):
    """earshot's tiny neural detector: 16 ms (256-sample) windows at 16 kHz."""

    window = 256

    def __init__(self, mode: int) -> None:
        self._detector = _require("earshot", "earshot", "earshot").Detector()
        super().__init__(mode)

    def _score(self, window: np.ndarray) -> float:
        return float(self._detector.predict_i16(window))


class SileroVad(_WindowedVad):
    """Silero VAD v5+ through onnxruntime (no torch): 512-sample windows at 16 kHz, each fed
    with the previous window's last 64 samples as context and a (2, 1, 128) recurrent state,
    exactly as silero-vad's own ``OnnxWrapper`` does."""

    window = 512
    context = 64

    def __init__(self, mode: int, session: Any = None) -> None:
        """``session``: another detector's model (:meth:`sibling`), else the model is loaded."""
        if session is None:
            ort = _require("onnxruntime", "onnxruntime", "silero")
            options = ort.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            session = ort.InferenceSession(str(silero_model_path()), sess_options=options,
                                           providers=["CPUExecutionProvider"])
        self._session = session
        self._sr = np.array(ANALYSIS_RATE, np.int64)
        super().__init__(mode)
        self.reset()

    def sibling(self) -> SileroVad:
        """A detector of its own state on the same loaded model."""
        return SileroVad(NEURAL_THRESHOLDS.index(self.on), self._session)

    def reset(self) -> None:
        """Back to the state of a new detector (the stream starts again)."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(self.context, np.float32)
        self._pending = np.zeros(0, np.int16)
        self._last_score = 0.0
        self._speaking = False

    def _score(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window.astype(np.float32) / np.float32(32768.0)])
        out, self._state = self._session.run(
            None, {"input": x[None, :], "state": self._state, "sr": self._sr})
        self._context = x[-self.context:]
        return float(out[0, 0])


def silero_model_path() -> Path:
    """``data/silero_vad.onnx`` of the installed silero-vad package, found without importing
    it (its ``__init__`` imports torch; install it with ``pip install --no-deps silero-vad``)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise MissingVadPackage(
            "the 'silero' VAD engine needs the Python package 'silero-vad' (install it without "
            f"torch: pip install --no-deps silero-vad) and onnxruntime: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise MissingVadPackage(f"silero-vad is installed but {path} is missing")
    return path


def create_vad(name: str, mode: int) -> VoiceActivityDetector:
    """The engine called ``name`` (one of :data:`ENGINES`) at aggressiveness ``mode``."""
    engines: dict[str, type[VoiceActivityDetector]] = {
        "webrtc": WebRtcVad, "earshot": EarshotVad, "silero": SileroVad}
    if name not in engines:
        raise ValueError(f"unknown VAD engine {name!r}; choose one of {', '.join(ENGINES)}")
    return engines[name](mode)


_PCM16 = np.dtype("<i2")


def to_pcm16(frames: np.ndarray) -> np.ndarray:
    """Float frames in [-1, 1) to int16 (saturating, truncating), the format webrtcvad takes."""
    scaled = frames * np.float32(32768.0)
    # np.clip's Python wrapper costs more than a live block's two frames.
    np.maximum(scaled, -32768.0, out=scaled)
    np.minimum(scaled, 32767.0, out=scaled)
    return scaled.astype(_PCM16)
