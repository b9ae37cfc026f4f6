"""What systemd makes of a service unit and its drop-ins, for the settings callwatch's unit uses.

A small model of systemd's rules (systemd.unit(5), systemd.service(5), systemd.exec(5)), so a
test can run what a user manager would run without one: drop-ins are read after the unit, in
file-name order; an empty assignment resets a list; ``%h``, ``%t`` and ``%%`` are resolved
before a line is split into words, which honours quotes; in a command, ``$$`` is a ``$``,
``${VAR}`` is the variable's value as one word (or part of one), and ``$VAR`` as a word of its
own is the value split into words: none when it is empty. Any other specifier is an error
here, so a unit that starts to use one gets a test update rather than a silent pass.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LISTS = ("ExecStartPre", "ExecStart", "ReadWritePaths", "Environment")
"""The ``[Service]`` settings kept here: each may be given more than once."""

_SPECIFIER = re.compile(r"%(.)")
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_WORD_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Service:
    """The ``[Service]`` lists of a unit with its drop-ins, for one user's home and runtime
    directory (what ``%h`` and ``%t`` stand for)."""

    home: Path
    runtime: Path
    raw: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in LISTS})

    @classmethod
    def load(cls, unit: Path, home: Path, runtime: Path) -> Service:
        """``unit`` and the ``*.conf`` files of ``unit.d/`` beside it."""
        service = cls(home, runtime)
        drop_ins = sorted(unit.with_name(unit.name + ".d").glob("*.conf"))
        for path in (unit, *drop_ins):
            service._read(path)
        return service

    def _read(self, path: Path) -> None:
        section = ""
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not a setting: {line!r}"
            key, value = key.strip(), value.strip()
            if section != "Service" or key not in LISTS:
                continue
            if value:
                self.raw[key].append(value)
            else:
                self.raw[key].clear()  # an empty assignment resets the list

    def specifiers(self, text: str) -> str:
        table = {"h": str(self.home), "t": str(self.runtime), "%": "%"}

        def one(m: re.Match[str]) -> str:
            assert m.group(1) in table, f"specifier %{m.group(1)} not modelled: {text!r}"
            return table[m.group(1)]

        return _SPECIFIER.sub(one, text)

    def words(self, value: str) -> list[str]:
        """A setting's value with its specifiers resolved, split into words (quotes honoured)."""
        return shlex.split(self.specifiers(value))

    @property
    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for value in self.raw["Environment"]:
            for assignment in self.words(value):
                name, sep, val = assignment.partition("=")
                assert sep and name, f"not an assignment: {assignment!r}"
                env[name] = val
        return env

    def command(self, value: str) -> list[str]:
        """An Exec line's argv, as the manager would start it with this unit's environment."""
        value = value.lstrip("-+@!:")  # prefixes: ignore failure, full privileges, argv[0] ...
        env = self.environment
        argv: list[str] = []
        for word in self.words(value):
            whole = _WHOLE_WORD_VARIABLE.fullmatch(word)
            if whole:
                argv += shlex.split(env.get(whole.group(1), ""))
            else:
                argv.append(_VARIABLE.sub(
                    lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""), word))
        return argv

    @property
    def exec_start(self) -> list[str]:
        assert len(self.raw["ExecStart"]) == 1, self.raw["ExecStart"]
        return self.command(self.raw["ExecStart"][0])

    @property
    def exec_start_pre(self) -> list[list[str]]:
        return [self.command(v) for v in self.raw["ExecStartPre"]]

    @property
    def read_write_paths(self) -> list[Path]:
        """Every ``ReadWritePaths=`` entry (an optional one's ``-`` taken off)."""
        return [Path(w.lstrip("-+")) for v in self.raw["ReadWritePaths"] for w in self.words(v)]

    def start_pre(self) -> None:
        """Run every ``ExecStartPre=`` command, as the manager does before the service."""
        for argv in self.exec_start_pre:
            subprocess.run(argv, check=True, timeout=30)

    def manager_env(self, **manager: str) -> dict[str, str]:
        """The environment the service gets: a user manager's own (home, runtime directory,
        path, and ``manager``: by default no XDG_CONFIG_HOME or XDG_STATE_HOME), overridden
        by the unit's ``Environment=``."""
        base = {"HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.runtime),
                "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **manager}
        return {**base, **self.environment}
