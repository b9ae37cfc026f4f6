"""The speaking-rate tuning set: which files of the pinned snapshots become clips (real
recordings only, with their own transcripts), and how clips become scored items (one per
speaker; numerals, unknown words and too-short speakers left out)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench import pace, pace_sources
from dsp import ANALYSIS_RATE


def _voiced(seconds: float, syllables: int) -> np.ndarray:
    """A harmonic carrier under ``syllables`` pulses: a stand-in for a recorded clip."""
    t = np.arange(round(seconds * ANALYSIS_RATE)) / ANALYSIS_RATE
    carrier = sum(np.sin(2 * np.pi * k * 130 * t) / k for k in range(1, 6))
    pulse = np.sin(np.pi * (t * syllables / seconds) % np.pi) ** 2
    return (0.1 * carrier * pulse).astype(np.float32)


def _write_wav(path: Path, seconds: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _voiced(seconds, 4), ANALYSIS_RATE)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.org", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _snapshot(root: Path, name: str, files: dict[str, str | None]) -> str:
    """A git repository ``root/name`` with ``files`` (text, or None for a WAV); returns
    the commit."""
    repo = root / name
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    for rel, text in files.items():
        if text is None:
            _write_wav(repo / rel)
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture
def snapshots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mirrors = tmp_path / "mirrors"
    vctk = _snapshot(mirrors, "msc-project", {
        "docs/master/vctk_all_samples/p225_001.orig.wav": None,
        "docs/vae/all/p225_001.orig.wav": None,  # the same clip twice: kept once
        "docs/master/vctk_all_samples/p226_002.orig.wav": None,
        "docs/master/vctk_all_samples/michael_johnson_p225.wav": None,  # synthetic
        "docs/vctk/samples/p226_003.wav": None,  # untrimmed
        "docs/master/p330_230.orig.wav": None,  # rewritten transcript
        "docs/vctk/vctk_meta_data": "id,age,gender,accents,region\n225,23,F,English,S\n"
                                    "226,22,M,English,Surrey\n330,26,F,American,X\n",
        "docs/vctk/vctk_transcripts/transcript_225": ',Transcript\np225_001,"Please call '
                                                     'Stella.\n"\n',
        "docs/vctk/vctk_transcripts/transcript_226": ",Transcript\np226_002,Ask her.\n"
                                                     "p226_003,Too long.\n",
        "docs/vctk/vctk_transcripts/transcript_330": ",Transcript\np330_230,Demo text.\n",
    })
    arctic = _snapshot(mirrors, "pyroomacoustics", {
        "examples/input_samples/cmu_arctic_us_aew_a0005.wav": None,
        "examples/input_samples/cmu_arctic_us_zzz_a0005.wav": None,  # unknown speaker
    })
    monkeypatch.setenv("CALLWATCH_PACE_MIRRORS", str(mirrors))
    monkeypatch.setattr(pace_sources, "MIRRORS", tmp_path / "none")
    monkeypatch.setattr(pace_sources, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(pace_sources, "VCTK", dataclasses.replace(pace_sources.VCTK,
                                                                  commit=vctk))
    monkeypatch.setattr(pace_sources, "ARCTIC", dataclasses.replace(pace_sources.ARCTIC,
                                                                    commit=arctic))
    return tmp_path


def test_build_takes_the_real_recordings_with_their_transcripts(snapshots: Path) -> None:
    clips = pace_sources.build()
    got = {(c.uid, c.speaker, c.sex, c.text) for c in clips}
    assert got == {
        ("p225_001", "p225", "F", "Please call Stella."),
        ("p226_002", "p226", "M", "Ask her."),
        ("aew_a0005", "aew", "M", "Will we ever forget it."),
    }
    assert all(c.path.exists() for c in clips)
    # The index is read back without the snapshots.
    assert pace_sources.clips() == clips


def test_no_snapshot_and_no_cache_gives_no_clips(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLWATCH_PACE_MIRRORS", str(tmp_path / "absent"))
    monkeypatch.setattr(pace_sources, "MIRRORS", tmp_path / "absent")
    monkeypatch.setattr(pace_sources, "CACHE", tmp_path / "cache")
    assert pace_sources.clips() == []


def test_items_are_one_per_speaker_without_unreliable_clips(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pace_sources, "CACHE", tmp_path)
    clips = []
    for uid, spk, text in (("a1", "pa", "one two three four five six seven eight"),
                           ("a2", "pa", "one two three four five six seven eight"),
                           ("a3", "pa", "call 999 now"),  # numerals: how were they read?
                           ("a4", "pa", "zyzzyva one"),  # a word the dictionary lacks
                           ("b1", "pb", "one two three")):  # too few syllables in all
        clip = pace_sources.Clip(uid, "vctk", spk, "F", text)
        _write_wav(clip.path, 2.0)
        clips.append(clip)
    monkeypatch.setattr(pace_sources, "clips", lambda: clips)
    words = {w: 1 for w in ("one", "two", "three", "four", "five", "six", "seven",
                            "eight", "call", "now")} | {"seven": 2}
    items = pace.tuning_items(words)
    assert [(i.source, i.name, i.syllables) for i in items] == [
        (pace.TUNING_SOURCE, "vctk/pa F", 18)]
    gap = round(pace.TUNING_GAP_S * ANALYSIS_RATE)
    assert len(items[0].audio) == 2 * 2 * ANALYSIS_RATE + gap


def test_a_snapshot_without_the_pinned_commit_is_named_with_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirrors = tmp_path / "mirrors"
    _snapshot(mirrors, "msc-project", {"README": "an older snapshot"})
    monkeypatch.setenv("CALLWATCH_PACE_MIRRORS", str(mirrors))
    monkeypatch.setattr(pace_sources, "MIRRORS", tmp_path / "none")
    monkeypatch.setattr(pace_sources, "CACHE", tmp_path / "cache")
    with pytest.raises(pace_sources.SnapshotError, match="fetch the repository again"):
        pace_sources.build()
    assert not (tmp_path / "cache" / pace_sources.INDEX).exists()
