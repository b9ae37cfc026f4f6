"""Fuzzing the config loader: any text gives settings or one ``ConfigError`` line, never
another exception (a reload on SIGHUP and ``--check-config`` rely on it)."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import Config, ConfigError, load_config, settings_classes

CLASSES = settings_classes()
KEYS = [(table, f.name) for table, cls in CLASSES.items() for f in dataclasses.fields(cls)]

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

toml_numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: "nan" if x != x else ("inf" if x == float("inf") else
                                        "-inf" if x == float("-inf") else repr(x))),
    st.sampled_from(["nan", "+inf", "-nan", "1e999", "0x10", "1_000", "9" * 5000, "true"]),
)
toml_scalars = st.one_of(toml_numbers, st.text(max_size=20).map(json.dumps),
                         st.sampled_from(['""', "false", "1979-05-27", "'lit'"]))
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4).map(lambda v: f"[{', '.join(v)}]"),
                            st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)),
    max_leaves=8,
)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    """Mostly well-formed files over the real tables and keys, with hostile values."""
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        table, key = draw(st.sampled_from(KEYS))
        if draw(st.booleans()):
            key = draw(st.sampled_from([key, "nope", '"a\\nb"', "x.y"]))
        lines.append(f"[{table}]\n{key} = {draw(toml_values)}")
    text = "\n".join(lines)
    if draw(st.booleans()):  # stray bytes: BOM, junk, truncation
        cut = draw(st.integers(0, len(text)))
        text = draw(st.sampled_from(["\ufeff", "", "\x00", "[[", "\n= ="])) + text[:cut]
    return text


def _load(data: bytes) -> Config | list[str]:
    fd, path = tempfile.mkstemp(suffix=".toml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return load_config(path)
    except ConfigError as exc:
        return exc.problems
    finally:
        os.unlink(path)


def _check(result: Config | list[str]) -> None:
    if isinstance(result, list):  # each problem one whole line, whatever the file held
        assert result, result
        for line in result:
            assert line and "\n" not in line and "\r" not in line, result
        return
    for table in CLASSES:
        for f in dataclasses.fields(getattr(result, table)):
            value = getattr(getattr(result, table), f.name)
            if isinstance(value, float):
                assert value == value and abs(value) != float("inf"), (table, f.name, value)


@FUZZ
@given(config_texts())
def test_structured_config_text_gives_settings_or_one_config_error(text):
    _check(_load(text.encode("utf-8", "surrogatepass")))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_settings_or_one_config_error(data):
    _check(_load(data))
