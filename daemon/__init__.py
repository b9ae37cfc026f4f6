"""callwatch's I/O edge: config, capture, device recovery, metrics, the CLI, systemd notify.

Note: ``daemon`` is also the import name of the unrelated python-daemon library; callwatch
installs into its own virtual environment and a test checks that this is the module loaded.
"""

from __future__ import annotations


def package_version() -> str:
    """The installed ``callwatch`` distribution's version, from its package metadata (so it
    is pyproject.toml's, never a second copy to keep in step); ``"0"`` for a source tree that
    was never installed."""
    from importlib.metadata import PackageNotFoundError, version  # only when asked

    try:
        return version("callwatch")
    except PackageNotFoundError:
        return "0"
