"""Every threshold reaches the detector or party that uses it, at construction and on reload.

The configuration a pipeline holds is read back by walking its object graph and collecting
every scalar and array it derived (the settings objects themselves are skipped, so a field
that no detector copies or converts shows up as "no effect"). For each field of
:class:`DetectorSettings`, a pipeline built with a changed value must differ from the default
one, and a default pipeline reconfigured to that value must equal the one built with it.
A new field added to the dataclass without being propagated fails here.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import numpy as np
import pytest

from dsp.pipeline import Pipeline
from dsp.settings import DetectorSettings

FIELDS = [f.name for f in dataclasses.fields(DetectorSettings)]


def _changed(field: dataclasses.Field[Any]) -> Any:
    """A valid value different enough from the default to change what is derived from it."""
    default, lo, hi = field.default, field.metadata["min"], field.metadata["max"]
    choices = field.metadata["choices"]
    if choices:
        return next(c for c in choices if c != default)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int) and not isinstance(default, bool):
        return default + 1 if hi is None or default + 1 <= hi else default - 1
    new = default * 2 if default else 1.0
    if (hi is not None and new > hi) or (lo is not None and new < lo):
        new = (default + (lo if lo is not None else default - 1.0)) / 2
    return new


def _configuration(root: object) -> dict[str, object]:
    """Every scalar and array reachable from ``root``, by attribute path."""
    out: dict[str, object] = {}
    seen: set[int] = set()

    def walk(obj: object, path: str) -> None:
        if isinstance(obj, DetectorSettings):
            return
        if isinstance(obj, (bool, int, float, str, Enum)) or obj is None:
            out[path] = obj
            return
        if isinstance(obj, np.ndarray):
            out[path] = (obj.shape, obj.dtype.str, obj.tobytes())
            return
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(v, f"{path}[{k}]")
        elif isinstance(obj, (list, tuple)):
            for k, v in enumerate(obj):
                walk(v, f"{path}[{k}]")
        else:
            names = list(getattr(obj, "__dict__", {}))
            for cls in type(obj).__mro__:
                names += [n for n in getattr(cls, "__slots__", ()) if hasattr(obj, n)]
            for name in names:
                walk(getattr(obj, name), f"{path}.{name}")

    walk(root, "pipeline")
    return out


@pytest.mark.parametrize("name", FIELDS)
def test_field_is_used_and_reload_matches_construction(name: str):
    field = next(f for f in dataclasses.fields(DetectorSettings) if f.name == name)
    new = dataclasses.replace(DetectorSettings(), **{name: _changed(field)})
    default = _configuration(Pipeline(DetectorSettings()))
    built = _configuration(Pipeline(new))
    reloaded_pipeline = Pipeline(DetectorSettings())
    reloaded_pipeline.update_settings(new)
    reloaded = _configuration(reloaded_pipeline)
    assert built != default, f"{name} changes nothing in the pipeline's detectors"
    assert reloaded == built, f"{name} is not applied the same way on reload"
    assert reloaded_pipeline.settings == new


def test_reload_back_to_defaults_restores_the_configuration():
    p = Pipeline(DetectorSettings())
    before = _configuration(p)
    changed = {f.name: _changed(f) for f in dataclasses.fields(DetectorSettings)}
    p.update_settings(dataclasses.replace(DetectorSettings(), **changed))
    assert _configuration(p) != before
    p.update_settings(DetectorSettings())
    assert _configuration(p) == before
