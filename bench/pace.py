"""Speaking-rate estimate (dsp.pace) against syllables counted from the text, and its cost.

Truth: the number of syllables of what was said, from the CMU Pronouncing Dictionary (the copy
Debian ships in ``pocketsphinx-en-us``; a word's syllables are the vowel phones of its first
pronunciation), over the speech time of the clean recording (bench.labels, with pauses of
``dsp.pace.PAUSE_MIN_S`` or more left out): the *articulation rate* the estimator reports.

Sources:

* ``espeak-ng``: four fixed English texts, two voices, at ``-s`` 100-280 words per minute.
* ``recorded (tuning)``: real read speech from other corpora than the held-out material
  (VCTK, 100+ speakers of both sexes, and two CMU ARCTIC speakers; bench.pace_sources says
  where it comes from and builds it into bench/cache), one item per speaker.
  The estimator's constants were tuned on these two parts only.
* ``librivox`` (held out): the five LibriVox utterances of Debian's ``pocketsphinx-testdata``
  (one reader, Sense and Sensibility), with their transcripts. Real read speech.
* ``cards`` (held out): the five short command recordings in the same package ("ten of
  clubs" ...), with their transcripts.

The estimator sees what it sees in the pipeline: 20 ms frames at 16 kHz and the talk-spurt
activity that dsp.pipeline.Pipeline itself reports for the recording (played as the agent,
between 1 s silences); a second table gives it the clean recording's own speech labels
instead, to separate the estimator's error from the speech decision's.

Run: ``.venv/bin/python -m bench.pace`` (writes bench/results/pace.json).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench import pace_sources
from bench.audio import resample
from bench.labels import speech_segments, total
from bench.sources import _fetch_deb, _tts
from dsp import ANALYSIS_RATE, FRAME_LEN, FRAME_S
from dsp.levels import frame_features
from dsp.pace import PAUSE_MIN_S, SyllableCounter
from dsp.pipeline import Pipeline

RESULTS = Path(__file__).resolve().parent / "results" / "pace.json"
DICT_PKG = "pocketsphinx-en-us"
DICT_PATH = "usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict"
TEST_PKG = "pocketsphinx-testdata"
TEST_DATA = "usr/share/pocketsphinx/test/data"
VOWELS = frozenset(("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW",
                    "OY", "UH", "UW"))
"""ARPAbet vowel phones: each is the nucleus of one syllable."""

ESPEAK_VOICES = ("en-us", "en-gb")
ESPEAK_RATES_WPM = (100, 120, 140, 175, 200, 220, 280)
TEXTS = (
    "Thank you for calling customer support. My name is Alex and I will be looking after "
    "your account today. Before we begin, could you please confirm your full name and the "
    "first line of your address?",
    "I understand that the delivery did not arrive when it was promised, and I am sorry "
    "about the trouble this has caused you. Let me look at the order history and see what "
    "happened with the courier.",
    "The new contract starts at the beginning of next month. Your monthly payment stays the "
    "same, but the minimum term is shorter, and you can cancel at any time without a fee.",
    "If the problem comes back, unplug the router, wait for a minute, and plug it in again. "
    "Most of the time that is enough to restore the connection in every room of the house.",
)
PAD_S = 1.0
"""Silence around each recording, as around a turn in a call: the pipeline's noise estimate
needs some non-speech to settle on (a recording that starts and ends on speech would be
judged against a background estimated from speech)."""
BLOCK_SIZES = (1, 7, 50, 250)
"""Block sizes (frames) for the cost measurement; the live daemon hands over a few frames at
a time, file analysis up to 250."""


# -- truth ----------------------------------------------------------------------------------

def cmudict() -> dict[str, int]:
    """Word -> syllable count (vowel phones of the first pronunciation)."""
    root = _fetch_deb(DICT_PKG)
    if root is None:
        sys.exit(f"{DICT_PKG}: could not be fetched with apt-get download; run apt-get update "
                 "and check that Debian's package index is reachable")
    out: dict[str, int] = {}
    for line in (root / DICT_PATH).read_text(encoding="utf-8").splitlines():
        word, *phones = line.split()
        if "(" in word:
            continue  # alternative pronunciations: the first one counts
        out[word] = sum(p.rstrip("012") in VOWELS for p in phones)
    return out


def count_syllables(text: str, dictionary: dict[str, int]) -> int:
    """Syllables of an English text by the dictionary; an unknown word is an error (the texts
    are fixed, so a miss means a typo, not a guess to make)."""
    words = re.findall(r"[a-z']+", text.lower())
    missing = sorted({w for w in words if w not in dictionary})
    if missing:
        raise ValueError(f"not in the pronouncing dictionary: {', '.join(missing)}")
    return sum(dictionary[w] for w in words)


def speech_time_s(x: np.ndarray) -> float:
    """Speech time of a clean recording at the analysis rate, pauses left out."""
    return total(speech_segments(x, ANALYSIS_RATE, bridge_s=PAUSE_MIN_S))


# -- the estimator as the pipeline runs it -------------------------------------------------

def to_frames(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME_LEN
    return np.asarray(x[: n * FRAME_LEN], dtype=np.float32).reshape(n, FRAME_LEN)


def pipeline_speech(frames: np.ndarray) -> np.ndarray:
    """The live pipeline's talk-spurt activity for this recording as the agent (the customer
    silent), frame by frame: what the estimator is given when wired into dsp.pipeline. Read
    through the public API (``stats.agent.speaking`` after each frame), so it follows the
    pipeline's gates as they change. The pipeline holds back its first second to estimate the
    background; those frames read as not speaking (they are the leading silence here)."""
    p = Pipeline()
    silence = np.zeros(FRAME_LEN, np.float32)
    out = np.zeros(len(frames), bool)
    done = 0
    for k in range(len(frames)):
        p.push(frames[k], silence)
        now = p.position // FRAME_LEN
        if now > done:
            out[now - 1] = p.stats.agent.speaking
            done = now
    return out


def reference_speech(x: np.ndarray, n_frames: int) -> np.ndarray:
    """Speech flags from the clean recording's own labels (the truth's speech time), placed
    after the leading pad: the estimator alone, without the pipeline's speech decision."""
    out = np.zeros(n_frames, bool)
    first = round(PAD_S / FRAME_S)
    for a, b in speech_segments(x, ANALYSIS_RATE, bridge_s=PAUSE_MIN_S):
        out[first + int(a / FRAME_S) : first + math.ceil(b / FRAME_S)] = True
    return out


def estimate(frames: np.ndarray, speech: np.ndarray, block: int = 50,
             **params: float) -> SyllableCounter:
    counter = SyllableCounter(**params)
    for a in range(0, len(frames), block):
        counter.update(frames[a : a + block], speech[a : a + block], a)
    counter.finish()
    return counter


# -- material ------------------------------------------------------------------------------

@dataclass
class Item:
    source: str
    name: str
    rate_wpm: int | None
    audio: np.ndarray
    syllables: int

    def __post_init__(self) -> None:
        self.speech_s = speech_time_s(self.audio)
        pad = np.zeros(round(PAD_S * ANALYSIS_RATE))
        self.frames = to_frames(np.concatenate((pad, self.audio, pad)))
        self.active = pipeline_speech(self.frames)
        self.reference = reference_speech(self.audio, len(self.frames))

    @property
    def true_sps(self) -> float:
        return self.syllables / self.speech_s


def load(path: Path) -> np.ndarray:
    x, r = sf.read(path, dtype="float64", always_2d=True)
    return resample(x[:, 0], r, ANALYSIS_RATE)


def espeak_items(dictionary: dict[str, int]) -> list[Item]:
    out = []
    for voice in ESPEAK_VOICES:
        for wpm in ESPEAK_RATES_WPM:
            for k, text in enumerate(TEXTS):
                x = load(_tts("espeak-ng", voice, text, wpm))
                out.append(Item("espeak-ng", f"{voice}/text{k}", wpm, x,
                                count_syllables(text, dictionary)))
    return out


TUNING_SOURCE = "recorded (tuning)"
TUNING_MIN_SYLLABLES = 15
"""Speakers with fewer syllables in the set (one or two short clips) are left out: over a
few syllables one nucleus more or less is 10-25 % of the rate, which says nothing."""
TUNING_GAP_S = 0.6
"""Silence between one speaker's clips when they are joined into one item: longer than a
pause (``PAUSE_MIN_S``), so it is left out of the true and the estimated speech time alike."""


def tuning_items(dictionary: dict[str, int]) -> list[Item]:
    """The recorded-speech tuning set (bench.pace_sources): one item per speaker, their clips
    joined with short silences (single clips of 1-4 s are too short for a rate: one nucleus
    is 10-25 % of one). Clips with a numeral or a word the dictionary lacks are left out
    (the truth would be a guess). Empty when the material is not on this machine."""
    by_speaker: dict[tuple[str, str], list[np.ndarray]] = {}
    syllables: dict[tuple[str, str], int] = {}
    for clip in pace_sources.clips():
        if re.search(r"\d", clip.text):
            continue  # numerals: how they were read is not in the text
        try:
            n = count_syllables(clip.text, dictionary)
        except ValueError:
            continue
        key = (clip.source, f"{clip.speaker} {clip.sex}")
        gap = np.zeros(round(TUNING_GAP_S * ANALYSIS_RATE))
        by_speaker.setdefault(key, []).extend((load(clip.path), gap))
        syllables[key] = syllables.get(key, 0) + n
    return [Item(TUNING_SOURCE, f"{source}/{name}", None, np.concatenate(parts[:-1]),
                 syllables[(source, name)])
            for (source, name), parts in sorted(by_speaker.items())
            if syllables[(source, name)] >= TUNING_MIN_SYLLABLES]


def _transcripts(path: Path) -> dict[str, str]:
    """Sphinx transcription lines: ``<s> words </s> (utterance-id)``."""
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*(.*?)\s*\(([^)]+)\)\s*$", line)
        if m:
            out[m.group(2)] = re.sub(r"</?s>", " ", m.group(1)).strip()
    return out


def pocketsphinx_items(dictionary: dict[str, int]) -> list[Item]:
    root = _fetch_deb(TEST_PKG)
    if root is None:
        sys.exit(f"{TEST_PKG}: could not be fetched with apt-get download; run apt-get update "
                 "and check that Debian's package index is reachable")
    data = root / TEST_DATA
    out = []
    for source, folder, listing in (("librivox", "librivox", "transcription"),
                                    ("cards", "cards", "cards.transcription")):
        for uid, text in sorted(_transcripts(data / folder / listing).items()):
            out.append(Item(source, uid, None, load(data / folder / f"{uid}.wav"),
                            count_syllables(text, dictionary)))
    return out


# -- scoring -------------------------------------------------------------------------------

def score(items: list[Item], speech: str = "active", **params: float) -> list[dict]:
    """One row per item; ``speech`` names the flags the estimator gets: the pipeline's
    talk-spurt ``active``ity (as wired live) or the ``reference`` labels of the clean
    recording."""
    rows = []
    for it in items:
        c = estimate(it.frames, getattr(it, speech), **params)
        est = c.rate_sps()
        rows.append({
            "source": it.source, "name": it.name, "rate_wpm": it.rate_wpm,
            "syllables": it.syllables, "nuclei": c.syllables,
            "speech_s": round(it.speech_s, 3), "estimator_speech_s": round(c.speech_s, 3),
            "true_sps": round(it.true_sps, 3),
            "est_sps": None if est is None else round(est, 3),
        })
    return rows


def summarise(rows: list[dict]) -> dict:
    t = np.array([r["true_sps"] for r in rows])
    e = np.array([r["est_sps"] or 0.0 for r in rows])
    err = np.abs(e - t)
    return {
        "items": len(rows),
        "true_sps": round(float(t.mean()), 2),
        "est_sps": round(float(e.mean()), 2),
        "mae_sps": round(float(err.mean()), 3),
        "mae_pct": round(float((err / t).mean() * 100), 1),
        "bias_pct": round(float(((e - t) / t).mean() * 100), 1),
        "pooled_err_pct": round(float(
            (sum(r["nuclei"] for r in rows) / sum(r["estimator_speech_s"] for r in rows))
            / (sum(r["syllables"] for r in rows) / sum(r["speech_s"] for r in rows)) * 100
            - 100), 1),
        "count_err_pct": round(float(np.mean([abs(r["nuclei"] - r["syllables"]) / r["syllables"]
                                              for r in rows]) * 100), 1),
    }


def tables(rows: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for source in dict.fromkeys(r["source"] for r in rows):
        sub = [r for r in rows if r["source"] == source]
        out[source] = summarise(sub)
        rates = sorted({r["rate_wpm"] for r in sub if r["rate_wpm"] is not None})
        for wpm in rates:
            out[f"{source} -s {wpm}"] = summarise([r for r in sub if r["rate_wpm"] == wpm])
    return out


def ratio_check(rows: list[dict], low: int = 120, high: int = 200) -> dict:
    """Estimated over true rate ratio between two espeak-ng speeds, per voice and text."""
    by = {(r["name"], r["rate_wpm"]): r for r in rows if r["source"] == "espeak-ng"}
    errs = []
    for (name, wpm), r in by.items():
        if wpm != low or (name, high) not in by:
            continue
        h = by[(name, high)]
        true = h["true_sps"] / r["true_sps"]
        est = h["est_sps"] / r["est_sps"]
        errs.append(abs(est - true) / true)
    return {"low_wpm": low, "high_wpm": high, "pairs": len(errs),
            "mean_abs_ratio_err_pct": round(float(np.mean(errs)) * 100, 1),
            "max_abs_ratio_err_pct": round(float(np.max(errs)) * 100, 1)}


def chunk_check(items: list[Item]) -> bool:
    """Same nuclei under every block size, on every item (what the unit tests check on
    synthetic input, here on all the real material)."""
    for it in items:
        ref = None
        for block in BLOCK_SIZES:
            c = SyllableCounter()
            nuc = []
            for a in range(0, len(it.frames), block):
                nuc += c.update(it.frames[a : a + block], it.active[a : a + block], a)
            nuc += c.finish()
            if ref is None:
                ref = nuc
            elif nuc != ref:
                return False
    return True


# -- cost ----------------------------------------------------------------------------------

def cost(items: list[Item], repeats: int = 3) -> dict:
    """µs per frame of SyllableCounter.update at several block sizes over all the material,
    beside two floors measured in the same run: frame_features on the same blocks (the
    cheapest vectorised step the pipeline already does) and the whole two-party pipeline."""
    frames = np.concatenate([it.frames for it in items])
    speech = np.concatenate([it.active for it in items])
    n = len(frames)
    out: dict[str, float] = {"frames": n}

    def best(fn) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times) / n * 1e6

    for block in BLOCK_SIZES:
        def run(block: int = block) -> None:
            c = SyllableCounter()
            for a in range(0, n, block):
                c.update(frames[a : a + block], speech[a : a + block], a)

        def floor(block: int = block) -> None:
            for a in range(0, n, block):
                frame_features(frames[a : a + block], 0.99)

        out[f"pace_us_per_frame_block{block}"] = round(best(run), 2)
        out[f"frame_features_us_per_frame_block{block}"] = round(best(floor), 2)
    mono = frames.ravel()

    def pipeline() -> None:
        p = Pipeline()
        for a in range(0, mono.size, 250 * FRAME_LEN):
            p.push(mono[a : a + 250 * FRAME_LEN], np.zeros(min(250 * FRAME_LEN,
                                                              mono.size - a), np.float32))
        p.finish()

    out["pipeline_us_per_frame_block250"] = round(best(pipeline), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    dictionary = cmudict()
    try:
        tuning = tuning_items(dictionary)
    except pace_sources.SnapshotError as exc:
        print(f"real-speech tuning set: {exc}", file=sys.stderr)
        tuning = []
    if not tuning:
        print("real-speech tuning set not found: see bench/pace_sources.py for where it comes "
              "from; its rows are left out", file=sys.stderr)
    items = espeak_items(dictionary) + tuning + pocketsphinx_items(dictionary)
    rows = score(items)
    reference = score(items, speech="reference")
    result = {
        "command": ".venv/bin/python -m bench.pace",
        "params": asdict_params(),
        "tables": tables(rows),
        "ratio_120_200": ratio_check(rows),
        "tables_reference_speech": {k: v for k, v in tables(reference).items()
                                    if " -s " not in k},
        "chunk_invariant": chunk_check(items),
        "cost": cost(items),
        "items": rows,
    }
    for title, table in (("pipeline speech decision", result["tables"]),
                         ("reference speech labels", result["tables_reference_speech"])):
        print(f"-- {title}")
        print(f"{'set':<20}{'n':>4}{'true':>7}{'est':>7}{'MAE sps':>9}{'MAE %':>7}"
              f"{'bias %':>8}{'pooled %':>10}{'count %':>9}")
        for k, v in table.items():
            print(f"{k:<20}{v['items']:>4}{v['true_sps']:>7.2f}{v['est_sps']:>7.2f}"
                  f"{v['mae_sps']:>9.3f}{v['mae_pct']:>7.1f}{v['bias_pct']:>8.1f}"
                  f"{v['pooled_err_pct']:>10.1f}{v['count_err_pct']:>9.1f}")
    print("ratio -s 200 / -s 120:", result["ratio_120_200"])
    print("chunk invariant:", result["chunk_invariant"])
    print("cost:", result["cost"])
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {RESULTS}")
    return 0


def asdict_params() -> dict:
    import dsp.pace as p
    return {k: getattr(p, k) for k in ("MIN_DIP_DB", "LOUD_RANGE_DB", "LOUD_DECAY_DB_PER_S",
                                       "MIN_GAP_S", "CLOSE_S", "CLOSE_DIP_DB",
                                       "VOICING_MIN", "PITCH_MIN_HZ",
                                       "PITCH_MAX_HZ", "PAUSE_MIN_S", "SMOOTHING")}


if __name__ == "__main__":
    raise SystemExit(main())
