"""Real speech with transcripts for tuning the speaking-rate estimator (bench.pace).

The rule: accuracy counts only on speech the constants were not tuned on. The held-out real
speech (the LibriVox and command utterances of Debian's ``pocketsphinx-testdata``) must not
be the material the constants are chosen on, so the tuning set here is recorded speech from
other corpora, other speakers and other microphones:

* ``vctk``: the CSTR VCTK Corpus (University of Edinburgh): 108 speakers of English with
  various accents, both sexes, each reading newspaper sentences, the Rainbow Passage and an
  elicitation paragraph in a studio. Licence: Open Data Commons Attribution (ODC-By) v1.0
  for the release these clips come from (later releases: CC BY 4.0); attribution: "CSTR VCTK
  Corpus, Christophe Veaux, Junichi Yamagishi, Kirsten MacDonald, University of Edinburgh".
  The clips, resampled to 16 kHz and trimmed of leading and trailing silence, and each
  speaker's transcripts and metadata (sex, age, accent) are in the public GitHub repository
  RichardSterry/msc-project (MSc project on VoiceLoop; its own text is CC BY-NC 4.0, the
  audio keeps VCTK's licence), files ``docs/**/pNNN_UUU.orig.wav``,
  ``docs/vctk/vctk_transcripts/transcript_NNN`` and ``docs/vctk/vctk_meta_data``. Its six
  untrimmed 48 kHz clips (``docs/vctk/samples/``) are left out: their 1-3 s of room noise
  before the speech lie within 30 dB of the speech level, so the truth's speech labels
  (bench.labels) would count the noise as speaking time.
* ``arctic``: CMU ARCTIC (Carnegie Mellon University, Language Technologies Institute),
  speakers aew (US male) and axb (Indian English female), prompts a0001-a0006. Licence: the
  CMU ARCTIC notice (use, copy, modify and distribute for any purpose, keeping the notice).
  The six clips are in the public GitHub repository LCAV/pyroomacoustics (MIT),
  ``examples/input_samples/cmu_arctic_us_{aew,axb}_a000N.wav``; the prompts are the
  corpus's ``cmuarctic.data`` lines.

Neither corpus is in a package registry this project reaches, so the audio cannot be
downloaded at run time: :func:`build` reads it from a local clone or snapshot of each
repository at the commit below (``git show COMMIT:PATH``; looked for as
``/work/.mirror/OWNER+NAME/repo``, or as ``DIR/OWNER+NAME/repo`` or ``DIR/NAME`` for each
``DIR`` in the colon-separated ``CALLWATCH_PACE_MIRRORS``) and writes
``bench/cache/pace-tuning/`` (untracked): the WAVs and ``items.tsv`` (id, source, speaker,
sex, text). Nothing of either corpus is committed.
With neither the cache nor a snapshot, bench.pace says so and leaves the tuning rows out.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache" / "pace-tuning"
INDEX = "items.tsv"
MIRRORS = Path("/work/.mirror")


@dataclass(frozen=True)
class Source:
    """One repository the tuning audio comes from, pinned to a commit."""

    name: str
    repo: str
    commit: str
    corpus: str
    licence: str


VCTK = Source(
    "vctk", "RichardSterry/msc-project", "638c3e775250ba3a7f050ae350b859648400f854",
    "CSTR VCTK Corpus (University of Edinburgh), 16 kHz clips",
    "ODC-By 1.0 (VCTK); repository text CC BY-NC 4.0",
)
ARCTIC = Source(
    "arctic", "LCAV/pyroomacoustics", "6fe43fecb7c358ac9aaa054e7e73641189f1afff",
    "CMU ARCTIC speakers aew and axb (Carnegie Mellon University)",
    "CMU ARCTIC notice (free use with notice); repository MIT",
)
SOURCES = (VCTK, ARCTIC)
VCTK_EXCLUDED = frozenset({"p330_230"})
"""Utterances whose transcript in that repository was rewritten (its author's demo sentence
about "Mr Michael Johnson" replaced the corpus text), so the words may not be what was said."""

ARCTIC_PROMPTS = {
    "a0001": "Author of the danger trail, Philip Steels, etc.",
    "a0002": "Not at this particular case, Tom, apologized Whittemore.",
    "a0003": "For the twentieth time that evening the two men shook hands.",
    "a0004": "Lord, but I'm glad to see you again, Phil.",
    "a0005": "Will we ever forget it.",
    "a0006": "God bless 'em, I hope I'll go on seeing them forever.",
}
"""The first six prompts of CMU ARCTIC's ``cmuarctic.data``."""
ARCTIC_SPEAKERS = {"aew": "M", "axb": "F"}


@dataclass(frozen=True)
class Clip:
    """One recorded utterance of the tuning set, as listed in ``items.tsv``."""

    uid: str
    source: str
    speaker: str
    sex: str
    text: str

    @property
    def path(self) -> Path:
        return CACHE / self.source / f"{self.uid}.wav"


def _git_dir(src: Source) -> Path | None:
    roots = [Path(p) for p in os.environ.get("CALLWATCH_PACE_MIRRORS", "").split(":") if p]
    roots.append(MIRRORS)
    for root in roots:
        for cand in (root / src.repo.replace("/", "+") / "repo", root / src.repo.split("/")[1]):
            if (cand / "HEAD").exists() or (cand / ".git").exists():
                return cand
    return None


class SnapshotError(RuntimeError):
    """A repository snapshot lacks what the tuning set is built from."""


def _git(git_dir: Path, *args: str) -> bytes:
    run = subprocess.run(["git", f"--git-dir={git_dir}" if (git_dir / "HEAD").exists()
                          else f"--git-dir={git_dir / '.git'}", *args], capture_output=True)
    if run.returncode != 0:
        raise SnapshotError(f"{git_dir}: git {' '.join(args)}: "
                            f"{run.stderr.decode(errors='replace').strip()}; fetch the "
                            "repository again so that it holds the pinned commit")
    return run.stdout


def _vctk(git_dir: Path) -> list[tuple[Clip, bytes]]:
    c = VCTK.commit
    names = _git(git_dir, "ls-tree", "-r", "--name-only", c, "docs").decode().splitlines()
    meta = {row["id"]: row for row in csv.DictReader(io.StringIO(
        _git(git_dir, "show", f"{c}:docs/vctk/vctk_meta_data").decode()))}
    texts: dict[str, dict[str, str]] = {}
    out: dict[str, tuple[Clip, bytes]] = {}
    for name in sorted(names):
        m = re.search(r"/(p(\d{3})_(\d{3}))(\.orig)?\.wav$", name)
        if not m or not m.group(4):
            continue  # the other wavs there are vocoded, synthetic or untrimmed (below)
        uid, spk = m.group(1), m.group(2)
        if uid in out or spk not in meta or uid in VCTK_EXCLUDED:
            continue
        if spk not in texts:
            raw = _git(git_dir, "show", f"{c}:docs/vctk/vctk_transcripts/transcript_{spk}")
            texts[spk] = {r[0]: r[1].strip() for r in csv.reader(io.StringIO(raw.decode()))
                          if len(r) == 2}
        if uid not in texts[spk]:
            continue
        out[uid] = (Clip(uid, "vctk", f"p{spk}", meta[spk]["gender"], texts[spk][uid]),
                    _git(git_dir, "show", f"{c}:{name}"))
    return list(out.values())


def _arctic(git_dir: Path) -> list[tuple[Clip, bytes]]:
    out = []
    names = _git(git_dir, "ls-tree", "--name-only", ARCTIC.commit,
                 "examples/input_samples/").decode().splitlines()
    for name in sorted(names):
        m = re.search(r"cmu_arctic_us_(\w{3})_(a\d{4})\.wav$", name)
        if m and m.group(1) in ARCTIC_SPEAKERS and m.group(2) in ARCTIC_PROMPTS:
            spk, prompt = m.group(1), m.group(2)
            out.append((Clip(f"{spk}_{prompt}", "arctic", spk, ARCTIC_SPEAKERS[spk],
                             ARCTIC_PROMPTS[prompt]),
                        _git(git_dir, "show", f"{ARCTIC.commit}:{name}")))
    return out


def build() -> list[Clip]:
    """Write the tuning clips and ``items.tsv`` into the cache from the repository
    snapshots; returns the clips (empty when no snapshot is found)."""
    clips: list[Clip] = []
    for src, extract in ((VCTK, _vctk), (ARCTIC, _arctic)):
        git_dir = _git_dir(src)
        if git_dir is None:
            continue
        (CACHE / src.name).mkdir(parents=True, exist_ok=True)
        for clip, data in extract(git_dir):
            clip.path.write_bytes(data)
            clips.append(clip)
    if clips:
        with open(CACHE / INDEX, "w", encoding="utf-8") as f:
            for k in clips:
                f.write("\t".join((k.uid, k.source, k.speaker, k.sex, k.text)) + "\n")
    return clips


def clips() -> list[Clip]:
    """The tuning clips from the cache, built first if needed; empty when neither the cache
    nor a repository snapshot is here."""
    index = CACHE / INDEX
    if not index.exists():
        return build()
    out = []
    for line in index.read_text(encoding="utf-8").splitlines():
        uid, source, speaker, sex, text = line.split("\t")
        out.append(Clip(uid, source, speaker, sex, text))
    return out


if __name__ == "__main__":
    try:
        built = build()
    except SnapshotError as exc:
        sys.exit(f"python -m bench.pace_sources: {exc}")
    if not built:
        sys.exit("python -m bench.pace_sources: no snapshot of "
                 f"{' or '.join(s.repo for s in (VCTK, ARCTIC))} under {MIRRORS} or in "
                 "CALLWATCH_PACE_MIRRORS (colon-separated folders holding OWNER+NAME/repo); "
                 "fetch one, or point the variable at it")
    spk = {(c.source, c.speaker, c.sex) for c in built}
    print(f"{len(built)} clips, {len(spk)} speakers "
          f"({sum(s[2] == 'F' for s in spk)} F, {sum(s[2] == 'M' for s in spk)} M) in {CACHE}")
