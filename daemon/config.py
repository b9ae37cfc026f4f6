"""The config file: TOML -> frozen dataclasses, validated against the dataclasses themselves.

Every table maps to one settings dataclass owned by the package that uses it
(``[detectors]`` -> :class:`dsp.settings.DetectorSettings`, ``[capture]`` ->
:class:`CaptureSettings`, ...). Each field declares its type and, in its metadata, its range
(``dsp.settings.setting``) or its allowed values (``choices``), so a key is declared once, next
to the code that reads it, and this loader needs no per-key code: a new threshold is
configurable and validated the moment it is added.

Errors name the file, the table, the key, the value and what is allowed, in one line, for
example ``config.toml: [detectors] min_overlap_s = -1: must be between 0.1 and 5.0``.
"""

from __future__ import annotations

import dataclasses
import difflib
import getpass
import importlib
import json
import math
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsp.settings import DetectorSettings, setting

if TYPE_CHECKING:  # the tables' own modules are imported by name in TABLES, for their class
    from alerts.policy_settings import AlertSettings
    from alerts.server_settings import ServerSettings
    from daemon.check.judge import CheckSettings
    from daemon.metrics_settings import MetricsSettings
    from dsp.hearing import HearingSettings


class ConfigError(Exception):
    """A config file that cannot be used: one line per problem (``problems``), each naming
    file, table, key and fix. Every bad key of a file is reported at once, so that fixing a
    fleet's config takes one round, not one per mistake."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True, slots=True)
class CaptureSettings:
    """The ``[capture]`` table: which devices to open and how the live path behaves."""

    mic_device: str | int = setting(
        "default", doc="agent microphone: \"default\", a device index, or part of its name"
    )
    far_end_device: str | int = setting(
        "", doc="far-end (customer) audio: \"\" = monitor of the default sink, \"default\", an "
        "index, or part of a name (e.g. a speaker monitor source)"
    )
    backend: str = setting(
        "auto", choices=("auto", "pulse", "portaudio"),
        doc="how audio is captured: \"pulse\" = libpulse directly (PulseAudio or PipeWire), "
        "\"portaudio\" = PortAudio through ALSA, \"auto\" = pulse when a sound server answers"
    )
    far_end_app: str = setting(
        "", doc="record only this application's playback as the far end (its name or binary as "
        "`callwatch devices` lists it; pulse backend); \"\" = the whole far_end_device"
    )
    samplerate_hz: int = setting(
        16000, 0, 192000, "capture rate of both streams (16000: the sound server resamples, "
        "no resampling latency in the daemon); 0 = each device's default rate"
    )
    block_s: float = setting(
        0.04, 0.005, 0.2, "audio block length: the loop runs as each block arrives, so this "
        "sets the latency against CPU (BENCHMARKS.md, Live daemon)"
    )
    ring_s: float = setting(2.0, 0.5, 60.0, "ring buffer per stream (audio the loop may lag)")
    process_interval_s: float = setting(
        0.1, 0.02, 1.0, "longest the processing loop sleeps when no audio arrives (control "
        "requests and device changes wait at most this long); audio wakes it at once"
    )
    stall_timeout_s: float = setting(
        1.0, 0.2, 30.0, "no audio callback for this long = stream stalled, reopen it"
    )
    device_check_s: float = setting(
        2.0, 0.0, 60.0, "verify the stream is still on the chosen source this often; 0 = never"
    )
    retry_min_s: float = setting(0.5, 0.05, 60.0, "first retry delay after a device fault")
    retry_max_s: float = setting(10.0, 0.1, 600.0, "longest retry delay (backoff doubles)")
    skew_window_s: float = setting(
        60.0, 5.0, 3600.0, "window over which the clock-rate ratio of the two devices is measured"
    )
    auto_calls: bool = setting(True, doc="start and end calls from far-end activity")
    call_start_speech_s: float = setting(
        1.0, 0.1, 60.0, "far-end speech within a quiet stretch that starts a call"
    )
    call_end_silence_s: float = setting(
        30.0, 2.0, 3600.0, "far-end silence that ends an automatically started call"
    )


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """The ``[agent]`` table: who this workstation belongs to (for metrics and alerts)."""

    id: str = setting("", doc="agent identity; \"\" = user@host")


@dataclass(frozen=True, slots=True)
class ControlSettings:
    """The ``[control]`` table: the local call-control socket (``callwatch call ...``)."""

    socket_path: str = setting(
        "", doc="Unix socket for call start/end; \"\" = $XDG_RUNTIME_DIR/callwatch/control.sock"
    )


TABLES: dict[str, tuple[str, str]] = {
    "detectors": ("dsp.settings", "DetectorSettings"),
    "capture": ("daemon.config", "CaptureSettings"),
    "agent": ("daemon.config", "AgentSettings"),
    "control": ("daemon.config", "ControlSettings"),
    "alerts": ("alerts.policy_settings", "AlertSettings"),
    "server": ("alerts.server_settings", "ServerSettings"),
    "metrics": ("daemon.metrics_settings", "MetricsSettings"),
    "check": ("daemon.check.judge", "CheckSettings"),
    "hearing": ("dsp.hearing", "HearingSettings"),
}
"""Config table -> (module, settings dataclass). A table whose module is not installed is
left out (``None`` in :class:`Config`) and rejected if the file uses it."""


def settings_classes() -> dict[str, type]:
    """The settings dataclass of every table whose module imports."""
    out: dict[str, type] = {}
    for table, (module, name) in TABLES.items():
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        out[table] = cls
    return out


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; a table whose module is missing is ``None``."""

    path: str | None = None
    detectors: DetectorSettings = field(default_factory=DetectorSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    alerts: AlertSettings | None = None
    server: ServerSettings | None = None
    metrics: MetricsSettings | None = None
    check: CheckSettings | None = None
    hearing: HearingSettings | None = None

    @property
    def agent_id(self) -> str:
        return self.agent.id or default_agent_id()


def default_agent_id() -> str:
    """``user@host``: unique per workstation seat without any configuration."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def default_path() -> Path:
    """``$XDG_CONFIG_HOME/callwatch/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "callwatch" / "config.toml"


def resolve_path(explicit: str | None) -> str | None:
    """The config file to read: ``--config``, else the default path if it exists, else none."""
    if explicit:
        return explicit
    p = default_path()
    return str(p) if p.is_file() else None


# -- type checking --------------------------------------------------------------------------

_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(tp) if a is not type(None))
    if origin in (list, tuple):
        return f"a list of {_describe(typing.get_args(tp)[0]).removeprefix('a ')}s"
    return _TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any) -> tuple[bool, Any]:
    """(ok, value converted to the field's type). TOML ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            ok, v = _coerce(arg, value)
            if ok:
                return True, v
        return False, None
    if origin in (list, tuple):
        if not isinstance(value, list):
            return False, None
        (item,) = typing.get_args(tp)[:1]
        out = []
        for v in value:
            ok, c = _coerce(item, v)
            if not ok:
                return False, None
            out.append(c)
        return True, tuple(out) if origin is tuple else out
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False, None
        try:
            return True, float(value)
        except OverflowError:  # an integer beyond any float: refused as not finite
            return True, math.inf
    if tp is str:
        return isinstance(value, str), value
    return False, None


def show(value: Any) -> str:
    """A value as error messages quote it: TOML-like, on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # quoted, newlines escaped: one line
    if isinstance(value, dict):
        return "{...}"
    return repr(value)


def _name(key: str) -> str:
    """A table or key name as TOML would write it (quoted unless bare), on one line."""
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _fmt_num(x: float) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def _range_text(lo: float | None, hi: float | None) -> str:
    """The allowed range in words: ``between 0.1 and 5.0``, ``at least 0``, ...."""
    if lo is not None and hi is not None:
        return f"between {_fmt_num(lo)} and {_fmt_num(hi)}"
    if lo is not None:
        return f"at least {_fmt_num(lo)}"
    if hi is not None:
        return f"at most {_fmt_num(hi)}"
    return ""


def _finite(value: Any) -> bool:
    """False for NaN and the infinities (also inside lists). TOML allows ``nan`` and ``inf``,
    and every range check is false for NaN, so they must be refused before the range check."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def build_settings(cls: type, values: dict[str, Any], where: str) -> Any:
    """An instance of the settings dataclass ``cls`` from one TOML table.

    ``where`` prefixes every error (``config.toml: [detectors]``). Unknown keys, wrong types
    and values outside the field's ``min``/``max``/``choices`` raise :class:`ConfigError`.
    """
    obj, problems, _ = _build(cls, values, where)
    if problems:
        raise ConfigError(problems)
    return obj


def _build(cls: type, values: dict[str, Any], where: str) -> tuple[Any, list[str], set[str]]:
    """``(instance, problems, bad keys)``: the instance takes the keys that are valid on their
    own (the defaults for the rest), so the rules between keys can still be checked and every
    problem of a file reported at once."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    bad: set[str] = set()
    for key, value in values.items():
        problem = _problem(fields, hints, key, value, where)
        if isinstance(problem, str):
            problems.append(problem)
            bad.add(key)
        else:
            kwargs[key] = problem[0]
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a class's own cross-field check (__post_init__)
        if not problems:  # with bad keys, a rule between keys may be one of theirs
            problems.append(f"{where}: {' '.join(str(exc).split())}")
        obj = cls()
    return obj, problems, bad


def _problem(fields: dict[str, dataclasses.Field[Any]], hints: dict[str, Any], key: str,
             value: Any, where: str) -> str | tuple[Any]:
    """What is wrong with ``key = value`` (one line naming it and the fix), or the value as
    the field takes it (in a 1-tuple)."""
    f = fields.get(key)
    if f is None:
        known = ", ".join(fields) or "none"
        return (f"{where} {_name(key)} = {show(value)}: unknown key;{_did_you_mean(key, fields)}"
                f" known keys: {known}")
    tp = hints[f.name]
    ok, v = _coerce(tp, value)
    if not ok:
        return f"{where} {_name(key)} = {show(value)}: must be {_describe(tp)}"
    meta = f.metadata
    lo, hi, choices = meta.get("min"), meta.get("max"), meta.get("choices")
    if not _finite(v):
        rng = _range_text(lo, hi)
        return (f"{where} {_name(key)} = {show(value)}: must be a finite number"
                + (f" {rng}" if rng else ""))
    numeric = isinstance(v, int | float) and not isinstance(v, bool)
    if numeric and ((lo is not None and v < lo) or (hi is not None and v > hi)):
        return f"{where} {_name(key)} = {show(value)}: must be {_range_text(lo, hi)}"
    if choices is not None and v not in choices:
        allowed = ", ".join(show(c) for c in choices)
        return f"{where} {_name(key)} = {show(value)}: must be one of {allowed}"
    return (v,)


def _did_you_mean(name: str, known: Iterable[str], form: str = "{}") -> str:
    """`` did you mean X?`` for a name one typo away from a known one, else nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return f" did you mean {form.format(close[0])}?" if close else ""


def _toml_error(path: str, exc: tomllib.TOMLDecodeError, text: str) -> ConfigError:
    """The parser's complaint with its place and the line it is about: tomllib's messages
    do not name the key ("Cannot overwrite a value" for a key set twice)."""
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
    if m:
        detail = msg[: m.start()].strip()
        line, col = m.group(1), m.group(2)
        lines = text.splitlines()
        n = int(line)
        shown = lines[n - 1].strip() if 0 < n <= len(lines) else ""
        if len(shown) > 60:
            shown = shown[:57] + "..."
        quoted = f" in {json.dumps(shown, ensure_ascii=False)}" if shown else ""
        return ConfigError(f"{path}: line {line}, column {col}: invalid TOML: {detail}"
                           f"{quoted}")
    return ConfigError(f"{path}: invalid TOML: {msg}")


def parse(data: dict[str, Any], path: str) -> Config:
    """Validate an already-decoded TOML document."""
    classes = settings_classes()
    kwargs: dict[str, Any] = {"path": path}
    for table, cls in classes.items():
        kwargs[table] = cls()
    problems: list[str] = []
    bad: dict[str, set[str]] = {}  # per table, the keys refused on their own
    for table, values in data.items():
        cls = classes.get(table)
        if not isinstance(values, dict):
            problems.append(
                f"{path}: {_name(table)} = {show(values)}: keys outside a table are not allowed; "
                f"put settings in a table such as [capture]")
        elif cls is None:
            known = ", ".join(f"[{t}]" for t in classes)
            problems.append(f"{path}: [{_name(table)}]: unknown table;"
                            f"{_did_you_mean(table, classes, '[{}]')} known tables: {known}")
        else:
            kwargs[table], found, bad[table] = _build(cls, values, f"{path}: [{table}]")
            problems += found

    def valid(table: str, *keys: str) -> bool:
        return not bad.get(table, set()) & set(keys)

    # The rules between keys, for keys that are valid on their own: reported with the rest.
    cap: CaptureSettings = kwargs["capture"]
    if valid("capture", "retry_min_s", "retry_max_s") and cap.retry_max_s < cap.retry_min_s:
        problems.append(
            f"{path}: [capture] retry_max_s = {cap.retry_max_s}: must be at least retry_min_s "
            f"({cap.retry_min_s})"
        )
    det: DetectorSettings = kwargs["detectors"]
    if valid("detectors", "too_loud_dbfs", "too_quiet_dbfs") \
            and det.too_loud_dbfs <= det.too_quiet_dbfs:
        problems.append(
            f"{path}: [detectors] too_loud_dbfs = {det.too_loud_dbfs}: must be above "
            f"too_quiet_dbfs ({det.too_quiet_dbfs}); a level cannot be too quiet and too loud"
        )
    if valid("detectors", "vad", "vad_mode"):
        try:
            _check_vad_engine(det, path)
        except ConfigError as exc:
            problems += exc.problems
    if valid("detectors", "confirm_vad"):
        try:
            _check_confirm_vad(det, path)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return Config(**kwargs)


def _check_vad_engine(det: DetectorSettings, path: str) -> None:
    """Refuse an optional VAD engine whose package is missing: the file is valid TOML with a
    valid choice, but the pipeline could not be built from it, so run, demo and analyze would
    all fail later (with a traceback, or by blaming each recording). The engine is built once
    here, which finds every missing piece (earshot, onnxruntime, silero-vad's model file)."""
    if det.vad == "webrtc":
        return  # always installed; keeps dsp.vad out of a plain start-up
    from dsp.vad import MissingVadPackage, create_vad

    try:
        create_vad(det.vad, det.vad_mode)
    except MissingVadPackage as exc:
        raise ConfigError(
            f"{path}: [detectors] vad = {show(det.vad)}: {' '.join(str(exc).split())}, "
            'or set vad = "webrtc" (always installed)'
        ) from None


def _check_confirm_vad(det: DetectorSettings, path: str) -> None:
    """Refuse ``confirm_vad = "silero"`` without its packages, for the same reason (``auto``
    does without them; ``none`` needs nothing)."""
    if det.confirm_vad != "silero":
        return
    from dsp.vad import MissingVadPackage
    from dsp.voice_confirm import confirm_available

    try:
        confirm_available(det.confirm_vad)
    except MissingVadPackage as exc:
        raise ConfigError(
            f"{path}: [detectors] confirm_vad = {show(det.confirm_vad)}: "
            f"{' '.join(str(exc).split())}, or set confirm_vad = \"auto\" (silero when "
            'installed) or "none"'
        ) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; ``None`` gives the defaults.

    Whatever the file holds, the only exception is :class:`ConfigError` (one line): a
    SIGHUP reload and ``--check-config`` rely on that.
    """
    if path is None:
        return parse({}, "(defaults)")
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; check --config") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read (permission denied)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        # Windows editors (Notepad) start UTF-8 files with a byte order mark.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        return parse(tomllib.loads(text), path)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(path, exc, text) from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except ValueError as exc:  # an integer literal beyond Python's digit limit
        raise ConfigError(f"{path}: invalid TOML: {str(exc).split(';')[0]}") from None
