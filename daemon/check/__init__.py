"""``callwatch check``: validate a headset install (the command is :mod:`daemon.check.cli`).

The package's own namespace is the part the live daemon needs, the saved result and its
verdicts (:mod:`daemon.check.result`), so that importing it never pulls in the check's
devices, prompts or measurements.
"""

from daemon.check.result import (
    SCHEMA,
    Item,
    LastCheckWatcher,
    Verdict,
    apply_last_check,
    check_verdicts,
    default_result_path,
    load_last_check,
    save_result,
)

__all__ = [
    "SCHEMA",
    "Item",
    "LastCheckWatcher",
    "Verdict",
    "apply_last_check",
    "check_verdicts",
    "default_result_path",
    "load_last_check",
    "save_result",
]
