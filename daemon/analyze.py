"""``callwatch analyze``: the live pipeline run over recorded calls, one report per call.

Quality auditors run it over thousands of files, so a bad file never stops a batch: it is
reported on stderr (file, problem, fix), every other file is still analysed, the failures are
listed at the end, and the exit code is 2 if any file failed. With ``--json`` a bad file also
gets its line on stdout, an error object in place of the report (:func:`error_line`), so a
script reading the output finds one line per file, in argument order, without parsing stderr.

Batches run in ``--jobs`` worker processes (one call is one sequential stream, so calls are
the unit of parallelism). Each worker renders its call's output text; the parent prints the
texts in argument order as soon as the next one in order is ready, so the output is the same,
byte for byte, as a serial run, and starts before the batch ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol

import soundfile as sf

from daemon.audiofile import AudioFileError, CallReader, CallSource, ErrorCode, display_path
from daemon.blas_threads import limit_blas_threads
from daemon.command import EXIT_BAD_INPUT, CommandError, command
from daemon.config import load_config
from dsp import ANALYSIS_RATE
from dsp.events import Phase, rounded
from dsp.hearing import HearingSettings
from dsp.pipeline import Pipeline
from dsp.report import SCHEMA, build_report
from dsp.settings import DetectorSettings

EXIT_OK = 0

Settings = tuple[DetectorSettings | None, HearingSettings | None]
"""The ``[detectors]`` and ``[hearing]`` tables a batch runs with (``None``: the defaults)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="CALL",
                   help="stereo recordings (channel 0 agent, channel 1 customer by default), "
                        "or folders: every recording under them, in name order")
    p.add_argument("--agent", metavar="FILE", help="mono recording of the agent's side")
    p.add_argument("--customer", metavar="FILE", help="mono recording of the customer's side")
    p.add_argument("--agent-channel", type=int, default=None, metavar="N",
                   help="channel of the agent in stereo files (default 0), or in a "
                        "multi-channel --agent file (default 0)")
    p.add_argument("--customer-channel", type=int, default=None, metavar="N",
                   help="channel of the customer in stereo files (default 1), or in a "
                        "multi-channel --customer file (default 0)")
    p.add_argument("--json", action="store_true",
                   help="print one callwatch.analysis/1 JSON object per call, one per line")
    p.add_argument("--config", metavar="TOML",
                   help="take detector thresholds from this config file ([detectors] and "
                        "[hearing] tables); without it the built-in defaults are used, not the "
                        "daemon's config file, so reports compare across machines")
    p.add_argument("--jobs", "-j", type=_jobs, default=None, metavar="N",
                   help="analyse N files at once in worker processes (default: the number of "
                        "CPU cores); the output is the same, in the same order, for any N")


def _jobs(text: str) -> int:
    """argparse type of ``--jobs``: a positive whole number (argparse exits 2 otherwise)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of worker processes: pass a whole number, 1 or more"
        )
    return n


def default_jobs() -> int:
    """The CPU cores this process may use (its affinity mask where the platform has one)."""
    count = getattr(os, "process_cpu_count", None)  # Python >= 3.13
    if count is not None:
        return count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(slots=True)
class CallAnalysis:
    """One call's report, the unrounded data of its listed events, and reading warnings."""

    report: dict[str, Any]
    details: list[Mapping[str, object]]
    warnings: list[str] = field(default_factory=list)


def analyze_call(source: CallSource, settings: DetectorSettings | None = None,
                 hearing: HearingSettings | None = None) -> dict[str, object]:
    """Analyse one call with ``settings`` (``[detectors]``) and ``hearing`` (``[hearing]``);
    raises :class:`AudioFileError` for unusable input."""
    return _analyze(source, settings, hearing).report


def _analyze(source: CallSource, settings: DetectorSettings | None = None,
             hearing: HearingSettings | None = None) -> CallAnalysis:
    with CallReader(source) as reader:
        pipeline = Pipeline(settings, reader.agent_rate, reader.customer_rate, hearing)
        events = []
        try:
            for agent, customer in reader.blocks():
                events.extend(pipeline.push(agent, customer))
        except (RuntimeError, OSError) as exc:  # libsndfile errors mid-file
            raise AudioFileError(
                f"{source.label}: audio data is corrupt after "
                f"{pipeline.position / ANALYSIS_RATE:.1f} s ({exc}); re-export the recording",
                "corrupt",
            ) from None
        events.extend(pipeline.finish())
        stats = pipeline.stats
        report = build_report(stats, events, stats.duration_s, reader.agent_rate)
        # Same selection and order as build_report's event list.
        finished = sorted((e for e in events if e.phase is Phase.END),
                          key=lambda e: (e.start, e.kind))
        return CallAnalysis(report, [e.data for e in finished], list(reader.warnings))


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (a missing one is reported when it is opened)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return a == b


def _sources(args: argparse.Namespace) -> list[CallSource]:
    two_files = bool(args.agent or args.customer)
    agent_ch = 0 if args.agent_channel is None else args.agent_channel
    customer_ch = (0 if two_files else 1) if args.customer_channel is None \
        else args.customer_channel
    if agent_ch < 0 or customer_ch < 0:
        raise AudioFileError("channel numbers start at 0; negative values are not channels")
    if two_files:
        if not (args.agent and args.customer):
            raise AudioFileError("--agent and --customer go together: pass both mono files")
        if args.files:
            raise AudioFileError(
                "pass either stereo files or --agent/--customer, not both"
            )
        if agent_ch == customer_ch and _same_file(args.agent, args.customer):
            # Refused, not warned about: the customer would be the agent's own voice, so every
            # word would be a talk-over and every figure of the report would be made up.
            raise AudioFileError(
                f"{display_path(args.agent)} is both --agent and --customer (channel "
                f"{agent_ch} for both): the customer would be the agent's own voice; pass the "
                "customer's recording as --customer, or a stereo call as one file "
                "(channel 0 agent, 1 customer)"
            )
        return [CallSource(args.agent, args.customer, agent_ch, customer_ch)]
    if not args.files:
        raise AudioFileError(
            "no call to analyse: pass stereo files, or --agent A.wav --customer C.wav"
        )
    if agent_ch == customer_ch:
        raise AudioFileError(
            f"--agent-channel and --customer-channel are both {agent_ch}; "
            "they must differ"
        )
    return [CallSource(f, f, agent_ch, customer_ch) for f in expand_dirs(args.files)]


AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif",
                            ".aiff", ".aifc", ".au", ".snd", ".caf", ".w64", ".rf64"})
"""What a folder given to ``analyze`` is searched for: the call recordings libsndfile decodes
(by name: a recorder's folder also holds notes, metadata and transcripts)."""


def expand_dirs(paths: list[str]) -> list[str]:
    """``paths`` with each folder replaced by the recordings under it, at any depth, in name
    order (a recorder's tree of days and queues, as recordings/2026-12-07/queue-3/...).

    Files given by name are kept whatever their suffix (the reader says what is wrong with
    them). Hidden files and folders are skipped (an upload in progress, ``.Trash``), and
    symbolic links to folders are not followed (a link back up the tree would never end).
    A folder with no recording in it is an error naming the suffixes looked for."""
    out: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            out.append(path)
            continue
        found: list[str] = []
        for root, dirs, names in os.walk(path, onerror=_walk_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found += (os.path.join(root, n) for n in sorted(names)
                      if not n.startswith(".")
                      and os.path.splitext(n)[1].lower() in AUDIO_SUFFIXES)
        if not found:
            raise AudioFileError(
                f"{display_path(path)}: no recordings in this folder or below it (looked for "
                f"{', '.join(sorted(AUDIO_SUFFIXES))}); pass the files themselves if they are "
                "named otherwise"
            )
        out += found
    return out


def _walk_error(exc: OSError) -> None:
    """A folder under a given one that cannot be listed stops the batch before it starts:
    analysing the rest would report a partial tree as if it were whole."""
    name = display_path(exc.filename) if exc.filename else "a folder"
    raise AudioFileError(f"{name}: cannot list this folder ({exc.strerror}); make it "
                         "readable (chmod o+rx) or leave it out") from None


def _channel_warnings(args: argparse.Namespace, source: CallSource) -> list[str]:
    """For ``--agent``/``--customer`` files with more than one channel whose channel was not
    chosen: which channel is analysed and how to pick another (one could hold the other party
    or a mix). A file that cannot be read is left to the reader, which says why."""
    out = []
    for side, path, channel, given in (
        ("agent", source.agent_path, source.agent_channel, args.agent_channel),
        ("customer", source.customer_path, source.customer_channel, args.customer_channel),
    ):
        if given is not None:
            continue
        try:
            channels = sf.info(os.fsencode(path)).channels
        except Exception:  # any unreadable file is reported, with its fix, when it is read
            continue
        if channels > 1:
            out.append(
                f"{display_path(path)}: {channels} channels; analysing channel {channel} as "
                f"the {side}; pick another with --{side}-channel N (0..{channels - 1})"
            )
    return out


def _settings(args: argparse.Namespace) -> Settings:
    """The ``[detectors]`` and ``[hearing]`` tables of ``--config`` (defaults without one);
    a bad file raises :class:`~daemon.config.ConfigError` naming file, key and fix."""
    if not args.config:
        return None, None
    cfg = load_config(args.config)
    return cfg.detectors, cfg.hearing


def _number(v: object) -> str:
    """An event value for reading, as the JSON report rounds it (:func:`dsp.events.rounded`),
    with two decimals shown where it has them."""
    if isinstance(v, float):
        r = rounded(v)
        return f"{r:.2f}" if r == 0 or abs(r) >= 0.1 else f"{r:g}"
    return str(v)


def format_report(label: str, report: dict[str, Any],
                  details: Sequence[Mapping[str, object]] | None = None,
                  warnings: Sequence[str] = ()) -> str:
    """A short human-readable report of one call.

    ``details`` are the events' unrounded data (the JSON report rounds to two decimals), in
    the order of ``report["events"]``. ``warnings`` (the reader's doubts about the file) come
    first: a report saved to a file must say that its figures mean little for a channel
    copied to both sides, as the JSON report's ``warnings`` do.
    """
    lines = [f"{label}: {report['duration_s']:.1f} s at {report['sample_rate_hz']} Hz"]
    lines += [f"  warning  {w.removeprefix(label + ': ')}" for w in warnings]
    for side in ("agent", "customer"):
        s = report[side]

        def db(v: float | None, unit: str) -> str:
            return "n/a" if v is None else f"{v:.1f} {unit}"

        lines.append(
            f"  {side:<8} speech {s['speech_s']:.1f} s, level "
            f"{db(s['active_level_dbfs'], 'dBFS')}, noise {db(s['noise_floor_dbfs'], 'dBFS')},"
            f" SNR {db(s['snr_db'], 'dB')}, clipped {100 * s['clipped_ratio']:.3f} %"
        )
        share = "n/a" if s["talk_share"] is None else f"{100 * s['talk_share']:.0f} %"
        rate = "n/a" if s["speech_rate_sps"] is None else f"{s['speech_rate_sps']:.1f} syl/s"
        lines.append(f"  {'':<8} talk share {share}, longest turn {s['longest_turn_s']:.1f} s,"
                     f" pace {rate}")
    t = report["talk_over"]
    lines.append(
        f"  talk-over {t['count']} ({t['seconds']:.1f} s): started by agent {t['by_agent']},"
        f" by customer {t['by_customer']}, {t['per_minute']:.1f} per minute;"
        f" silero's check in noise {'on' if t.get('noise_check') == 'silero' else 'off'}"
    )
    events = report["events"]
    lines.append(f"  events   {len(events) or 'none'}")
    fixed = ("kind", "stream", "start_s", "end_s")
    for i, e in enumerate(events):
        data = details[i] if details is not None else {
            k: v for k, v in e.items() if k not in fixed}
        extra = ", ".join(f"{k}={_number(v)}" for k, v in data.items() if k not in fixed)
        who = f" [{e['stream']}]" if e["stream"] else ""
        # The contract's name for dead air is "silence"; a reader knows it as dead air.
        kind = "silence (dead air)" if e["kind"] == "silence" else e["kind"]
        lines.append(
            f"    {e['start_s']:.2f}-{e['end_s']:.2f} s  {kind}{who}"
            + (f"  {extra}" if extra else "")
        )
    return "\n".join(lines)


class _Progress(Protocol):
    """What the batch needs of a progress bar: print a line past it, count a call done."""

    def __enter__(self) -> _Progress: ...

    def __exit__(self, *exc: object) -> None: ...

    def write(self, line: str, file: Any = None) -> None: ...

    def update(self, n: int) -> None: ...


class _NoProgress:
    """Stands in for a tqdm bar when none is shown (not a terminal, or one file): the lines
    go straight to their file, with no bar to clear and redraw around each."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def write(line: str, file: Any = None) -> None:
        print(line, file=file)

    def update(self, n: int) -> None:
        return None


def _progress(total: int, show: bool) -> _Progress:
    if not show:
        return _NoProgress()
    from tqdm import tqdm  # imported when a bar is shown: ~30 ms of every run's start-up

    return tqdm(total=total, unit="call", file=sys.stderr)  # type: ignore[return-value]


def error_line(label: str, message: str, code: ErrorCode) -> str:
    """The ``--json`` line of a file that could not be analysed: the report's ``schema`` and
    ``file``, and ``error`` with the stderr message (problem and fix) and its ``code``."""
    # The keys in a report's order, so the lines of a batch line up when read.
    return json.dumps({"file": label, "schema": SCHEMA,
                       "error": {"code": code, "message": message}},
                      separators=(",", ":"))


@dataclass(slots=True)
class _Outcome:
    """What one file gives the batch: its output text (with ``--json``, also for a failure),
    its error line for stderr, and warnings."""

    text: str | None
    error: str | None
    warnings: list[str]


def _failed(source: CallSource, message: str, code: ErrorCode, as_json: bool) -> _Outcome:
    """A file that could not be analysed: its stderr line, and with ``--json`` its stdout line
    too (in text mode stdout holds reports only, as it always has)."""
    return _Outcome(error_line(source.label, message, code) if as_json else None, message, [])


def _render(source: CallSource, settings: Settings, as_json: bool) -> _Outcome:
    """Analyse and render one call (runs in a worker process); never raises for one file."""
    try:
        result = _analyze(source, *settings)
    except AudioFileError as exc:
        return _failed(source, str(exc), exc.code, as_json)
    except Exception as exc:  # a defect must cost one file, not the batch
        return _failed(source, f"{source.label}: cannot analyse ({type(exc).__name__}: {exc}); "
                               "please report this file to the callwatch maintainers",
                       "internal", as_json)
    if as_json:
        # What the reader warned of (also on stderr) travels with the report it qualifies.
        text = json.dumps({"file": source.label, **result.report, "warnings": result.warnings},
                          separators=(",", ":"))
    else:
        text = format_report(source.label, result.report, result.details, result.warnings)
    return _Outcome(text, None, result.warnings)


def _outcomes(sources: list[CallSource], settings: Settings, as_json: bool, jobs: int
              ) -> Iterator[_Outcome]:
    """Outcomes in the order of ``sources``, each as soon as it and all before it are done."""
    if jobs <= 1 or len(sources) <= 1:
        for source in sources:
            yield _render(source, settings, as_json)
        return
    from concurrent.futures import ProcessPoolExecutor  # only a batch needs its ~20 ms import

    with ProcessPoolExecutor(max_workers=min(jobs, len(sources))) as pool:
        yield from pool.map(_render, sources, repeat(settings), repeat(as_json))


@command("analyze")
def main(args: argparse.Namespace) -> int:
    try:
        sources = _sources(args)
    except AudioFileError as exc:
        raise CommandError(str(exc)) from None
    settings = _settings(args)
    # As in the daemon: the pipeline's products are small, and idle BLAS workers spinning
    # beside every call (one set per --jobs worker) cost CPU time that buys no speed.
    limit_blas_threads()
    if args.agent or args.customer:
        for warning in _channel_warnings(args, sources[0]):
            print(f"callwatch analyze: warning: {warning}", file=sys.stderr)

    jobs = args.jobs if args.jobs is not None else default_jobs()
    failures: list[str] = []
    show_bar = len(sources) > 1 and sys.stderr.isatty()
    written = 0
    with _progress(len(sources), show_bar) as bar:
        for outcome in _outcomes(sources, settings, args.json, jobs):
            for warning in outcome.warnings:  # a text report holds its own
                if args.json:
                    bar.write(f"callwatch analyze: warning: {warning}", file=sys.stderr)
            if outcome.error is not None:
                failures.append(outcome.error)
                bar.write(f"callwatch analyze: {outcome.error}", file=sys.stderr)
            if outcome.text is not None:
                # Text reports of several calls are read one after another: a blank line
                # between them. JSON stays one object per line, a failed file's included.
                gap = "\n" if written and not args.json else ""
                bar.write(gap + outcome.text, file=sys.stdout)
                written += 1
            bar.update(1)
    sys.stdout.flush()
    if failures:
        if len(sources) > 1:
            print(f"callwatch analyze: {len(failures)} of {len(sources)} file(s) failed:",
                  file=sys.stderr)
            for line in failures:
                print(f"  {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
