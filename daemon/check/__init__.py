"""``callwatch check``: validate a headset install (the command is :mod:`daemon.check.cli`).

The package's own namespace is the part the live daemon needs, the saved result and its
verdicts: exactly the API of :mod:`daemon.check.result` (its ``__all__``, declared there
once), so that importing it never pulls in the check's devices, prompts or measurements.
"""

from daemon.check import result
from daemon.check.result import *  # noqa: F403  (the package's API is the result module's)

__all__ = result.__all__
