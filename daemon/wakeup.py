"""The processing loop's wake-up: it sleeps until audio arrives (or a signal, a request).

Capture threads call :meth:`Wakeup.set` after each block they store, which makes the loop
run as soon as there is work instead of polling on a timer: fewer wake-ups when the call is
quiet, and no extra polling delay on top of the block length. ``set`` is one ``write(2)`` on
an eventfd: no Python lock and no allocation, so it obeys the audio callback's rules
(DESIGN.md §3), unlike ``threading.Event.set``, which takes a lock.
"""

from __future__ import annotations

import contextlib
import os
import select

ONE = (1).to_bytes(8, "little")
"""An eventfd adds the 8-byte counter it is written; a pipe just holds the bytes."""


class Wakeup:
    """A level-triggered flag on an eventfd (a pipe where eventfd is missing).

    It lives as long as the process: never closed, so a late ``set`` from a capture thread
    or a signal can never write into a descriptor number reused by something else."""

    def __init__(self) -> None:
        if hasattr(os, "eventfd"):
            self._rfd = self._wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # pragma: no cover (non-Linux)
            self._rfd, self._wfd = os.pipe()
            os.set_blocking(self._rfd, False)
            os.set_blocking(self._wfd, False)

    def set(self) -> None:
        """Wake the waiter (from any thread, a signal handler or an audio callback)."""
        with contextlib.suppress(BlockingIOError):  # already pending: the waiter will run
            os.write(self._wfd, ONE)

    def wait(self, timeout: float) -> bool:
        """Sleep until :meth:`set` or ``timeout`` seconds; True when woken. Clears the flag."""
        ready, _, _ = select.select([self._rfd], [], [], timeout)
        if not ready:
            return False
        with contextlib.suppress(BlockingIOError):  # another waiter drained it first
            os.read(self._rfd, 4096)
        return True
