"""The config loader: defaults, the example file, and one clear error per kind of mistake."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
import typing
from pathlib import Path

import pytest

import daemon
from daemon.config import (
    CaptureSettings,
    ConfigError,
    build_settings,
    load_config,
    settings_classes,
)
from dsp.settings import DetectorSettings, setting

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def test_daemon_package_is_this_project_not_python_daemon():
    assert Path(daemon.__file__).resolve().parent == ROOT / "daemon"


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg.detectors == DetectorSettings()
    assert cfg.capture == CaptureSettings()
    assert "@" in cfg.agent_id


def test_example_lists_exactly_every_key_and_loads_cleanly():
    data = tomllib.loads(EXAMPLE.read_text())
    classes = settings_classes()
    assert set(data) == set(classes), "example tables differ from the settings tables"
    for table, cls in classes.items():
        names = [f.name for f in dataclasses.fields(cls)]
        assert sorted(data[table]) == sorted(names), f"[{table}] keys differ"
        defaults = cls()
        for name in names:
            default = getattr(defaults, name)
            if isinstance(default, tuple):
                default = list(default)
            assert data[table][name] == default, f"[{table}] {name} default"
    text = EXAMPLE.read_text()
    for cls in classes.values():
        for f in dataclasses.fields(cls):
            # every key is preceded by a comment that states its default
            block = re.search(rf"((?:#.*\n)+){f.name} = ", text)
            assert block and "Default" in block.group(1), f"{f.name}: no documented default"
    cfg = load_config(EXAMPLE)
    for table, cls in classes.items():
        assert getattr(cfg, table) == cls(), f"[{table}] example differs from the defaults"


def test_values_are_applied(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[detectors]\nmin_overlap_s = 1\n[capture]\nmic_device = 3\nauto_calls = false\n'
                 '[agent]\nid = "a17"\n')
    cfg = load_config(p)
    assert cfg.detectors.min_overlap_s == 1.0 and isinstance(cfg.detectors.min_overlap_s, float)
    assert cfg.capture.mic_device == 3 and cfg.capture.auto_calls is False
    assert cfg.agent_id == "a17"


BAD = [
    ("[detectors]\nmin_overlap_s = -1\n",
     r"c\.toml: \[detectors\] min_overlap_s = -1: must be between 0\.1 and 5\.0"),
    ('[detectors]\nmin_overlap_s = "long"\n',
     r'c\.toml: \[detectors\] min_overlap_s = "long": must be a number'),
    ("[capture]\nauto_calls = 1\n", r"\[capture\] auto_calls = 1: must be true or false"),
    ("[capture]\nmic_device = 1.5\n",
     r"\[capture\] mic_device = 1\.5: must be a string or an integer"),
    ("[detectors]\nmin_overlap = 1.0\n",
     r"\[detectors\] min_overlap = 1\.0: unknown key; did you mean min_overlap_s\? "
     r"known keys: .*min_overlap_s"),
    ("[detector]\nmin_overlap_s = 1.0\n",
     r"\[detector\]: unknown table; did you mean \[detectors\]\? known tables: \[detectors\]"),
    ("[detectors]\nmin_overlap_s = \n", r"c\.toml: line 2, column \d+: invalid TOML"),
    ("[detectors]\nmin_overlap_s = 0.5\nmin_overlap_s = 0.6\n",  # the key is in the quote
     r'c\.toml: line 3, column \d+: invalid TOML: .* in "min_overlap_s = 0\.6"$'),
    ("min_overlap_s = 1.0\n", r"min_overlap_s = 1\.0: keys outside a table"),
    ("[capture]\nretry_min_s = 5.0\nretry_max_s = 1.0\n", r"retry_max_s = 1\.0: must be at least"),
    ("[detectors]\ntoo_quiet_dbfs = -10\ntoo_loud_dbfs = -12\n",
     r"c\.toml: \[detectors\] too_loud_dbfs = -12\.0: must be above too_quiet_dbfs \(-10\.0\)"),
    ("[detectors]\ntoo_quiet_dbfs = -20\ntoo_loud_dbfs = -20\n",
     r"\[detectors\] too_loud_dbfs = -20\.0: must be above too_quiet_dbfs \(-20\.0\)"),
]


def assert_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    """``run --check-config`` on a file holding ``text``: exit 2, one stderr line matching
    ``message``."""
    p = tmp_path / "c.toml"
    p.write_text(text)
    out = run_check("--config", str(p))
    assert out.returncode == 2, out
    assert re.search(message, out.stderr), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize(("text", "message"), BAD)
def test_every_error_names_file_table_key_and_value(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: no such config file"):
        load_config(tmp_path / "nope.toml")


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "run", "--check-config", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, env=env)


@pytest.mark.parametrize(("text", "message"), BAD)
def test_check_config_exits_2_with_the_message(tmp_path, text, message):
    assert_refused_in_one_line(tmp_path, text, message)


def test_every_bad_key_of_a_file_is_reported_at_once(tmp_path):
    """IT fixing a fleet's config fixes it in one round: each problem on its own line, named
    with file, table, key and what it must be; the good keys are not mentioned."""
    p = tmp_path / "c.toml"
    p.write_text('[metrics]\nport = 99999\n[alerts]\ntalk_over_severity = "loud"\n'
                 'cooldown_s = 30\n[detectors]\nmin_overlap = 0.8\ntoo_loud_dbfs = -50.0\n'
                 '[sound]\nx = 1\n[capture]\nretry_min_s = 5.0\nretry_max_s = 2.0\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    problems = info.value.problems
    # the rules between two keys come with the rest, not in a second round
    assert [line.split(": ", 2)[1] for line in problems] == [
        "[metrics] port = 99999", "[alerts] talk_over_severity = \"loud\"",
        "[detectors] min_overlap = 0.8", "[sound]", "[capture] retry_max_s = 2.0",
        "[detectors] too_loud_dbfs = -50.0"]
    out = run_check("--config", str(p))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [f"callwatch run: {line}" for line in problems]
    assert "cooldown_s" not in out.stderr
    assert "[detectors] min_overlap = 0.8: unknown key; did you mean min_overlap_s? known " \
           "keys: " in problems[2]
    assert "did you mean" not in problems[3]  # [sound] is nothing like a table we have
    # a rule between keys is not checked against a key refused on its own
    p.write_text('[detectors]\ntoo_quiet_dbfs = "loud"\ntoo_loud_dbfs = -50.0\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert len(info.value.problems) == 1 and "too_quiet_dbfs" in info.value.problems[0]
    p.write_text("[alert]\ncooldown_s = 30\n")
    with pytest.raises(ConfigError, match=r"\[alert\]: unknown table; did you mean \[alerts\]\? "
                                          r"known tables: "):
        load_config(p)


def test_check_config_accepts_the_example():
    out = run_check("--config", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "config.example.toml: OK" in out.stdout


def test_default_path_from_xdg_config_home(tmp_path):
    import os
    (tmp_path / "callwatch").mkdir()
    (tmp_path / "callwatch" / "config.toml").write_text("[detectors]\nvad_mode = 9\n")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path))
    out = run_check(env=env)
    assert out.returncode == 2 and "vad_mode = 9: must be between 0 and 3" in out.stderr


def test_check_table_reaches_the_headset_check(tmp_path):
    from daemon.check.judge import CheckSettings
    from daemon.config import load_config

    path = tmp_path / "c.toml"
    path.write_text("[check]\nhum_warn_db = 12.5\n")
    cfg = load_config(str(path))
    assert isinstance(cfg.check, CheckSettings)
    assert cfg.check.hum_warn_db == 12.5
    assert cfg.check.hum_fail_db == CheckSettings().hum_fail_db


# -- values no range check can catch -------------------------------------------------------


def _float_fields() -> list[tuple[str, str]]:
    out = []
    for table, cls in settings_classes().items():
        hints = typing.get_type_hints(cls)
        out += [(table, f.name) for f in dataclasses.fields(cls) if hints[f.name] is float]
    return out


@pytest.mark.parametrize(("table", "key"), _float_fields())
@pytest.mark.parametrize("literal", ["nan", "inf", "-inf"])
def test_every_float_setting_refuses_nan_and_infinity(tmp_path, table, key, literal):
    p = tmp_path / "c.toml"
    p.write_text(f"[{table}]\n{key} = {literal}\n")
    with pytest.raises(ConfigError) as info:
        load_config(p)
    message = str(info.value)
    assert message.startswith(f"{p}: [{table}] {key} = {literal}: must be a finite number")
    field = next(f for f in dataclasses.fields(settings_classes()[table]) if f.name == key)
    lo, hi = field.metadata.get("min"), field.metadata.get("max")
    if lo is not None and hi is not None:
        assert f"between {lo!r} and {hi!r}" in message or f"between {lo} and {hi}" in message


def test_an_integer_too_large_for_a_float_is_not_finite(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[detectors]\nmin_overlap_s = 1" + "0" * 400 + "\n")
    with pytest.raises(ConfigError, match=r"min_overlap_s = 10+: must be a finite number"):
        load_config(p)


def test_nan_inside_a_list_setting_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Gains:
        gains_db: tuple[float, ...] = ()

    with pytest.raises(ConfigError, match=r"\[t\] gains_db = \[1\.0, nan\]: must be a finite"):
        build_settings(Gains, {"gains_db": [1.0, float("nan")]}, "c.toml: [t]")


def test_a_setting_with_choices_is_validated_generically():
    @dataclasses.dataclass(frozen=True)
    class Voice:
        vad: str = setting("webrtc", choices=("webrtc", "earshot", "silero"))

    assert build_settings(Voice, {"vad": "silero"}, "c.toml: [t]").vad == "silero"
    with pytest.raises(ConfigError, match=r'c\.toml: \[t\] vad = "other": must be one of '
                                          r'"webrtc", "earshot", "silero"'):
        build_settings(Voice, {"vad": "other"}, "c.toml: [t]")
    with pytest.raises(ConfigError, match=r"vad = 3: must be a string"):
        build_settings(Voice, {"vad": 3}, "c.toml: [t]")


def test_deep_nesting_is_one_config_error(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"c\.toml: invalid TOML: .*nested too deeply"):
        load_config(p)


def test_a_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "c.toml"
    p.write_bytes(b"\xef\xbb\xbf[detectors]\nmin_overlap_s = 1.5\n")
    assert load_config(p).detectors.min_overlap_s == 1.5


def test_a_key_with_a_newline_still_gives_one_line(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[detectors]\n"a\\nb" = "x\\ny"\n')
    with pytest.raises(ConfigError) as info:
        load_config(p)
    assert "\n" not in str(info.value)
    assert r'"a\nb" = "x\ny": unknown key' in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("[detectors]\nmin_overlap_s = nan\n",
     r"\[detectors\] min_overlap_s = nan: must be a finite number between 0\.1 and 5\.0"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", r"nested too deeply"),
])
def test_check_config_refuses_non_finite_and_deep_files_in_one_line(tmp_path, text, message):
    assert_refused_in_one_line(tmp_path, text, message)


@pytest.mark.parametrize(("text", "message"), [
    ('[metrics]\nlisten_address = "no-such-host.invalid"\n',
     r'\[metrics\] listen_address = "no-such-host\.invalid": does not resolve'),
    ('[server]\nhost = "no-such-host.invalid"\n',
     r'\[server\] host = "no-such-host\.invalid": does not resolve'),
    ('[metrics]\ntls_cert_file = "{tmp}/none.pem"\ntls_key_file = "{tmp}/none.key"\n',
     r"\[metrics\] tls_cert_file = .*none\.pem.*cannot load the certificate"),
    ('[control]\nsocket_path = "{tmp}/' + "s" * 120 + '.sock"\n',
     r"\[control\] socket_path = .*longer than the 107 bytes"),
    ('[control]\nsocket_path = "{tmp}/c.toml/control.sock"\n',
     r"\[control\] socket_path = .*c\.toml is not a directory"),
])
def test_check_config_finds_what_would_fail_at_start(tmp_path, text, message):
    p = tmp_path / "c.toml"
    p.write_text(text.replace("{tmp}", str(tmp_path)))
    load_config(p)  # a valid file...
    out = run_check("--config", str(p))
    assert out.returncode == 2, out  # ...that could not start
    assert re.search(message, out.stderr), out.stderr


_DEFAULT_TEXT = re.compile(
    r'Default ("[^"]*"|\[[^\]]*\]|true|false|-?\d+(?:\.\d+)?(?:e-?\d+)?)(?![\d.]*\d)')
_RANGE_TEXT = re.compile(r"range (-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)")


def test_example_comments_state_the_real_default_and_range():
    """The comment above each key says "Default X" (and "range A..B"): X and the range must
    be the settings' own, or the example misleads whoever tunes from it."""
    parts = re.split(r"^\[(\w+)\]$", EXAMPLE.read_text(), flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    wrong = []
    for table, cls in settings_classes().items():
        defaults = cls()
        for f in dataclasses.fields(cls):
            block = re.search(rf"((?:#.*\n)+){f.name} = ", sections[table])
            assert block, f"[{table}] {f.name}: no comment"
            comment = " ".join(line.lstrip("# ") for line in block.group(1).splitlines())
            m = _DEFAULT_TEXT.search(comment)
            if not m:
                wrong.append(f"[{table}] {f.name}: no readable default in {comment!r}")
                continue
            stated = tomllib.loads(f"x = {m.group(1)}")["x"]
            default = getattr(defaults, f.name)
            if isinstance(default, tuple):
                default = list(default)
            if stated != default:
                wrong.append(f"[{table}] {f.name}: comment says {stated!r}, default {default!r}")
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            r = _RANGE_TEXT.search(comment)
            if lo is not None and hi is not None and (
                    r is None or (float(r.group(1)), float(r.group(2))) != (lo, hi)):
                wrong.append(f"[{table}] {f.name}: comment range "
                             f"{r.group(0) if r else None!r}, settings {lo}..{hi}")
    assert not wrong, "\n".join(wrong)


# -- an optional VAD engine whose package is not installed ----------------------------------

# The neural packages are test dependencies, so they are installed here: their absence is
# simulated by blocking the import (a ``None`` in sys.modules makes ``import`` raise
# ImportError and ``find_spec`` answer None), the only way to produce that fault.
_MISSING = [
    ("vad", "earshot", "earshot", r"needs the Python package 'earshot'", 'vad = "webrtc"'),
    ("vad", "silero", "onnxruntime", r"needs the Python package 'onnxruntime'", 'vad = "webrtc"'),
    ("vad", "silero", "silero_vad", r"needs the Python package 'silero-vad'", 'vad = "webrtc"'),
    ("confirm_vad", "silero", "onnxruntime", r"needs the Python package 'onnxruntime'",
     'confirm_vad = "auto"'),
    ("confirm_vad", "silero", "silero_vad", r"needs the Python package 'silero-vad'",
     'confirm_vad = "auto"'),
]


@pytest.mark.parametrize(("key", "engine", "module", "why", "fix"), _MISSING)
def test_a_vad_engine_without_its_package_is_a_config_error(tmp_path, monkeypatch, key, engine,
                                                            module, why, fix):
    p = tmp_path / "c.toml"
    p.write_text(f'[detectors]\n{key} = "{engine}"\n')
    load_config(p)  # installed: accepted
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as info:
        load_config(p)
    msg = str(info.value)
    assert re.search(rf'c\.toml: \[detectors\] {key} = "{engine}": .*{why}', msg), msg
    assert "pip install 'callwatch[neural]'" in msg and fix in msg, msg
    assert "\n" not in msg
    p.write_text('[detectors]\nconfirm_vad = "auto"\n')  # auto does without silero
    assert load_config(p).detectors.confirm_vad == "auto"


@pytest.mark.parametrize("argv", [
    ["run", "--check-config"], ["run", "--no-server", "--no-metrics"], ["demo"],
    ["analyze", str(ROOT / "samples" / "sample-call.wav")],
])
def test_every_command_refuses_a_vad_engine_without_its_package(tmp_path, monkeypatch, capsys,
                                                                argv):
    from daemon.cli import main

    p = tmp_path / "c.toml"
    p.write_text('[detectors]\nvad = "earshot"\n')
    monkeypatch.setitem(sys.modules, "earshot", None)
    assert main([*argv, "--config", str(p)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    (line,) = out.err.strip().splitlines()
    assert line == (f"callwatch {argv[0]}: {p}: [detectors] vad = \"earshot\": the 'earshot' VAD "
                    "engine needs the Python package 'earshot': pip install 'callwatch[neural]', "
                    'or set vad = "webrtc" (always installed)')
