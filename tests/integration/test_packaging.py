"""Packaging: a real ``pip install`` of the project (not editable, then editable as ``make``
does) prints no build warnings, and the installed copy holds every module, the nudge page and
the JSON schemas, and runs from there.

The sources are copied to a temporary directory first: an in-tree build would leave ``build/``
and ``*.egg-info`` in the checkout. pip (the project venv's, with ``--python``) installs into
a throwaway venv without dependencies; the import check runs the project venv's interpreter on
the throwaway site-packages, which holds no dependency of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.daemon_run import ROOT

pytestmark = pytest.mark.integration

PACKAGES = ("dsp", "alerts", "daemon")
DATA = ("alerts/static/index.html", "alerts/static/app.js", "alerts/static/style.css",
        "alerts/protocol.schema.json", "daemon/analysis.schema.json",
        "daemon/check.schema.json")


def _source_files() -> set[str]:
    return {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, dst / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dst / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _pip(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--clear", "--without-pip", str(path)],
                   check=True, timeout=60)
    return path


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def test_install_has_no_warnings_and_every_file(project_copy, venv):
    out = _pip(venv, "install", "-q", "--no-deps", str(project_copy))
    assert out.returncode == 0, out.stderr
    assert "warning" not in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
    site = _site(venv)
    installed = {str(p.relative_to(site)) for pkg in PACKAGES for p in (site / pkg).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts}
    assert installed == _source_files()  # every subpackage (dsp/detectors) and data file
    assert set(DATA) <= installed
    dist = next(site.glob("callwatch-*.dist-info"))
    assert (dist / "licenses" / "LICENSE").is_file()
    metadata = (dist / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata

    # the installed copy, not the checkout, serves the nudge page and loads the schemas
    probe = ("import json, dsp, dsp.pipeline, daemon.analyze, alerts.protocol, alerts.gate\n"
             "print(json.dumps({'dsp': dsp.__file__, 'static': sorted(alerts.gate."
             "load_static()), 'schema': alerts.protocol.schema()['$schema']}))")
    run = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                          f"{str(site)!r}); {probe.replace(chr(10), '; ')}"],
                         capture_output=True, text=True, cwd=venv, timeout=60)
    assert run.returncode == 0, run.stderr
    import json

    got = json.loads(run.stdout)
    assert got["dsp"].startswith(str(site))
    assert got["static"] == ["app.js", "index.html", "style.css"]
    assert "json-schema.org" in got["schema"]


def test_editable_install_has_no_warnings(project_copy, venv):
    _pip(venv, "uninstall", "-y", "-q", "callwatch")
    out = _pip(venv, "install", "-q", "--no-deps", "-e", str(project_copy))
    assert out.returncode == 0, out.stderr
    assert "warning" not in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
