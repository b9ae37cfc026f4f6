"""The config loader: defaults, the example file, and one clear error per kind of mistake."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import daemon
from daemon.config import CaptureSettings, ConfigError, load_config, settings_classes
from dsp.settings import DetectorSettings

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
     r"\[detectors\] min_overlap = 1\.0: unknown key; known keys: .*min_overlap_s"),
    ("[detector]\nmin_overlap_s = 1.0\n",
     r"\[detector\]: unknown table; known tables: \[detectors\]"),
    ("[detectors]\nmin_overlap_s = \n", r"c\.toml: line 2, column \d+: invalid TOML"),
    ("min_overlap_s = 1.0\n", r"min_overlap_s = 1\.0: keys outside a table"),
    ("[capture]\nretry_min_s = 5.0\nretry_max_s = 1.0\n", r"retry_max_s = 1\.0: must be at least"),
]


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
    p = tmp_path / "c.toml"
    p.write_text(text)
    out = run_check("--config", str(p))
    assert out.returncode == 2, out
    assert re.search(message, out.stderr), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


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
    from daemon.check_measure import CheckSettings
    from daemon.config import load_config

    path = tmp_path / "c.toml"
    path.write_text("[check]\nhum_warn_db = 12.5\n")
    cfg = load_config(str(path))
    assert isinstance(cfg.check, CheckSettings)
    assert cfg.check.hum_warn_db == 12.5
    assert cfg.check.hum_fail_db == CheckSettings().hum_fail_db
