"""Speech material for the development set: real recordings first, synthetic voices on top.

Real speech comes from Debian packages: ``codec2-examples`` (installed by the test setup) and,
when it can be fetched, ``pocketsphinx-testdata`` (LibriVox and command utterances), unpacked
under ``bench/cache`` with ``apt-get download`` + ``dpkg -x``, plus the single-speaker
stretches of the real two-person call that ships in the ``pyannote.audio`` wheel
(``pip download --no-deps``; nothing is installed). espeak-ng and flite add
controllable sentences and the backchannels ("mm-hmm", "yeah", "okay") that no recording
holds on its own.

Every clip is cut into utterances at its pauses, gated to true digital silence outside its
labelled speech (so the noise floor of a mixed call is exactly the noise we add), and
normalised to a P.56 active level of -26 dBFS at 16 kHz.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.audio import resample
from bench.labels import Interval, speech_segments
from bench.levels import p56_active_level_dbfs

RATE = 16000
"""Rate at which calls are composed; files at other rates are resampled at the end."""
NOMINAL_DBFS = -26.0
CODEC2_RAW = Path("/usr/share/codec2/raw")
CACHE = Path(__file__).resolve().parent / "cache"
PAD_S = 0.04

# Codec2 recordings that are clean close-talk speech (the HF-radio ones are too noisy to label).
CODEC2_CLIPS = ("hts", "big_dog", "cross", "kristoff", "morig", "forig", "cq_ref")
CODEC2_WAV16 = "speech_orig_16k.wav"
POCKETSPHINX_PKG = "pocketsphinx-testdata"

SENTENCES = (
    "Thank you for calling, my name is Sam, how can I help you today?",
    "I have been waiting for my refund for almost three weeks now.",
    "Could you please read me the reference number on your letter?",
    "I already did that twice and nobody called me back.",
    "Let me check that for you, it will only take a moment.",
    "The payment was taken from my account on the fourth of March.",
    "I can see the order here, it was shipped on Tuesday.",
    "That is not what the person on the phone told me last time.",
    "Is there anything else I can help you with today?",
    "My internet keeps dropping every evening around eight o'clock.",
    "I understand, and I am sorry for the trouble this has caused.",
    "Can you send me an email with all of that in writing please?",
    "We will credit your account within five working days.",
    "No, the address is still the same as before.",
)
BACKCHANNEL_WORDS = ("mm-hmm", "yeah", "okay", "uh-huh", "right", "sure")
ESPEAK_VOICES = ("en-us", "en-gb-x-rp", "en-us+f3", "en+m3", "en-gb-scotland+f2")
FLITE_VOICES = ("slt", "awb", "rms", "kal16")


@dataclass(frozen=True)
class Utterance:
    """One utterance, gated and normalised, with its clean-speech segments (seconds)."""

    name: str
    speaker: str
    source: str
    audio: np.ndarray = field(repr=False)
    segments: tuple[Interval, ...]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE


def _gate(x: np.ndarray, segs: list[Interval]) -> np.ndarray:
    """Zero ``x`` outside ``segs`` (padded by PAD_S) with 10 ms raised-cosine ramps."""
    g = np.zeros(len(x))
    ramp = int(0.01 * RATE)
    win = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    for a, b in segs:
        i = max(0, int((a - PAD_S) * RATE))
        j = min(len(x), int((b + PAD_S) * RATE))
        g[i:j] = 1.0
        k = min(ramp, j - i)
        g[i : i + k] = np.maximum(g[i : i + k] * win[:k], 0)
        g[j - k : j] *= win[:k][::-1]
    return x * g


def split_utterances(
    x: np.ndarray, rate: int, name: str, speaker: str, source: str, max_pause_s: float = 0.35
) -> list[Utterance]:
    """Cut a clean clip into utterances at pauses longer than ``max_pause_s``."""
    y = resample(x, rate, RATE)
    out = []
    for k, (a, b) in enumerate(speech_segments(y, RATE, bridge_s=max_pause_s)):
        if b - a < 0.25:
            continue
        i = max(0, int((a - PAD_S) * RATE))
        j = min(len(y), int((b + PAD_S) * RATE))
        clip = y[i:j]
        segs = speech_segments(clip, RATE)
        if not segs:
            continue
        clip = _gate(clip, segs)
        level = p56_active_level_dbfs(clip, RATE)
        if level is None:
            continue
        clip = clip * 10 ** ((NOMINAL_DBFS - level) / 20)
        # Trim to the padded speech so an utterance starts and ends with its speech.
        s0 = max(0, int((segs[0][0] - PAD_S) * RATE))
        s1 = min(len(clip), int((segs[-1][1] + PAD_S) * RATE))
        clip = clip[s0:s1]
        shift = s0 / RATE
        out.append(
            Utterance(
                f"{name}#{k}", speaker, source, clip,
                tuple((round(p - shift, 4), round(q - shift, 4)) for p, q in segs),
            )
        )
    return out


def codec2_utterances(clips: tuple[str, ...] = CODEC2_CLIPS,
                      with_wav16: bool = True) -> list[Utterance]:
    """Real speech from Debian's codec2-examples (8 kHz raw clips and one 16 kHz WAV)."""
    if not CODEC2_RAW.exists():
        sys.exit(f"{CODEC2_RAW}: missing; install Debian's codec2-examples (apt-get install "
                 "codec2-examples, or make setup-test)")
    out: list[Utterance] = []
    for name in clips:
        x = np.fromfile(CODEC2_RAW / f"{name}.raw", dtype="<i2").astype(np.float64) / 32768
        out += split_utterances(x, 8000, f"codec2/{name}", f"codec2/{name}", "codec2-examples")
    if with_wav16:
        x, r = sf.read(CODEC2_RAW / CODEC2_WAV16, dtype="float64")
        out += split_utterances(x, r, "codec2/speech_orig_16k", "codec2/speech_orig_16k",
                                "codec2-examples")
    return out


def _fetch_deb(package: str) -> Path | None:
    """Unpack a Debian package under the cache (once); None when it cannot be fetched."""
    root = CACHE / package
    if (root / ".unpacked").exists():
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        return None
    root.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", package], cwd=root, check=True,
                       capture_output=True, timeout=120)
        debs = sorted(root.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(root)], check=True,
                       capture_output=True, timeout=60)
    except (subprocess.SubprocessError, IndexError, OSError):
        return None
    (root / ".unpacked").touch()
    return root


def pocketsphinx_utterances(librivox: bool = True, commands: bool = True) -> list[Utterance]:
    """Real read speech from pocketsphinx-testdata, if reachable: the LibriVox utterances
    (one reader) and/or the three command recordings (other speakers)."""
    root = _fetch_deb(POCKETSPHINX_PKG)
    if root is None:
        return []
    data = root / "usr/share/pocketsphinx/test/data"
    out: list[Utterance] = []
    for wav in sorted((data / "librivox").glob("*.wav")) if librivox else []:
        x, r = sf.read(wav, dtype="float64")
        out += split_utterances(x, r, f"pocketsphinx/{wav.stem}", "pocketsphinx/librivox",
                                POCKETSPHINX_PKG)
    for raw in ("goforward", "numbers", "something") if commands else ():
        p = data / f"{raw}.raw"
        if p.exists():
            x = np.fromfile(p, dtype="<i2").astype(np.float64) / 32768
            out += split_utterances(x, 16000, f"pocketsphinx/{raw}", f"pocketsphinx/{raw}",
                                    POCKETSPHINX_PKG)
    return out


PYANNOTE_WHEEL = "pyannote.audio==4.0.7"
PYANNOTE_SOURCE = "pyannote-sample"


def _fetch_pyannote_sample() -> Path | None:
    """sample.wav + sample.rttm from the pyannote.audio wheel (pip download, no install)."""
    root = CACHE / "pyannote"
    wav, rttm = root / "sample.wav", root / "sample.rttm"
    if wav.exists() and rttm.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        PYANNOTE_WHEEL, "-d", str(root)], check=True, capture_output=True,
                       timeout=300)
        whl = sorted(root.glob("pyannote_audio-*.whl"))[-1]
        with zipfile.ZipFile(whl) as z:
            for name, dest in (("sample.wav", wav), ("sample.rttm", rttm)):
                dest.write_bytes(z.read(f"pyannote/audio/sample/{name}"))
    except (subprocess.SubprocessError, IndexError, KeyError, OSError, zipfile.BadZipFile):
        return None
    return root


def pyannote_utterances() -> list[Utterance]:
    """Spontaneous conversational speech: the single-speaker stretches of pyannote.audio's
    sample call (a mono mix of two talkers; its RTTM says who speaks when)."""
    root = _fetch_pyannote_sample()
    if root is None:
        return []
    x, r = sf.read(root / "sample.wav", dtype="float64")
    turns: list[tuple[str, float, float]] = []
    for line in (root / "sample.rttm").read_text().splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns.append((f[7], float(f[3]), float(f[3]) + float(f[4])))
    out: list[Utterance] = []
    for k, (who, a, b) in enumerate(turns):
        # Keep only what this speaker says alone, 0.1 s clear of the other's speech.
        spans = [(a, b)]
        for other, c, d in turns:
            if other == who:
                continue
            spans = [piece for lo, hi in spans
                     for piece in ((lo, min(hi, c - 0.1)), (max(lo, d + 0.1), hi))
                     if piece[1] - piece[0] > 0]
        for j, (lo, hi) in enumerate(spans):
            if hi - lo >= 1.0:
                clip = x[int(lo * r) : int(hi * r)]
                out += split_utterances(clip, r, f"pyannote/{who}/{k}.{j}", f"pyannote/{who}",
                                        PYANNOTE_SOURCE)
    return out


def _tts(engine: str, voice: str, text: str, rate_wpm: int | None = None) -> Path:
    """Synthesize ``text`` once into the cache and return the WAV path."""
    key = hashlib.sha1(f"{engine}|{voice}|{text}|{rate_wpm}".encode()).hexdigest()[:16]
    path = CACHE / "tts" / f"{engine}-{key}.wav"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    stdin = None
    if engine == "espeak-ng":
        cmd = ["espeak-ng", "-v", voice, "-w", str(tmp)]
        if rate_wpm:
            cmd += ["-s", str(rate_wpm)]
        cmd.append(text)
    elif engine == "festival":
        cmd = ["text2wave", "-eval", f"(voice_{voice})", "-o", str(tmp)]
        stdin = text
    else:
        cmd = ["flite", "-voice", voice, "-t", text, "-o", str(tmp)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60, input=stdin,
                       text=stdin is not None)
    except FileNotFoundError:
        sys.exit(f"{engine}: not installed; apt-get install espeak-ng flite festival "
                 "(make setup-test)")
    tmp.replace(path)
    return path


def tts_utterances(voices: tuple[tuple[str, str], ...] | None = None,
                   sentences: tuple[str, ...] = SENTENCES, per_voice: int = 6,
                   first: int = 0) -> list[Utterance]:
    """Call-centre sentences in several TTS voices, as (engine, voice) pairs (default: the
    English espeak-ng and flite voices). Voice *n* says ``per_voice`` sentences starting at
    ``(first + n) * 3``, so the voices do not all repeat the same lines."""
    if voices is None:
        voices = tuple([("espeak-ng", v) for v in ESPEAK_VOICES]
                       + [("flite", v) for v in FLITE_VOICES])
    out: list[Utterance] = []
    for n, (engine, voice) in enumerate(voices):
        for k in range(per_voice):
            text = sentences[((first + n) * 3 + k) % len(sentences)]
            x, r = sf.read(_tts(engine, voice, text), dtype="float64")
            out += split_utterances(x, r, f"{engine}/{voice}/{k}", f"{engine}/{voice}",
                                    engine, max_pause_s=0.6)
    return out


def backchannel(engine: str, voice: str, word: str) -> Utterance | None:
    """One synthetic acknowledgement, if its speech lasts 0.3-0.7 s (else None)."""
    path = _tts(engine, voice, word, 190 if engine == "espeak-ng" else None)
    x, r = sf.read(path, dtype="float64")
    for u in split_utterances(x, r, f"{engine}/{voice}/{word}", f"{engine}/{voice}", engine,
                              max_pause_s=0.6):
        if 0.3 <= u.segments[-1][1] - u.segments[0][0] <= 0.7:
            return u
    return None


def backchannel_utterances(voices: tuple[tuple[str, str], ...] | None = None,
                           words: tuple[str, ...] = BACKCHANNEL_WORDS) -> list[Utterance]:
    """Short acknowledgements of 0.3-0.7 s of speech: not interruptions."""
    if voices is None:
        voices = tuple([("espeak-ng", v) for v in ESPEAK_VOICES[:3]]
                       + [("flite", v) for v in FLITE_VOICES[:2]])
    found = (backchannel(e, v, w) for e, v in voices for w in words)
    return [u for u in found if u is not None]


@dataclass(frozen=True)
class Library:
    """All utterances, grouped for drawing voices per call."""

    speech: tuple[Utterance, ...]
    backchannels: tuple[Utterance, ...]

    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.speech})

    def sources(self) -> list[str]:
        return sorted({u.source for u in self.speech + self.backchannels})


def load_library(with_pocketsphinx: bool = True) -> Library:
    """The full speech library, in a stable order (determinism of the dataset relies on it)."""
    speech = codec2_utterances()
    if with_pocketsphinx:
        speech += pocketsphinx_utterances()
        speech += pyannote_utterances()
    speech += tts_utterances()
    return Library(tuple(speech), tuple(backchannel_utterances()))
