"""PortAudio (through sounddevice), with the ALSA library's own messages kept off stderr.

PortAudio reaches the sound server through ALSA, and ALSA prints its complaints straight to
stderr: "ALSA lib pcm.c:8570:(snd_pcm_recover) underrun occurred" when a test tone is
starved on a loaded machine, "Unknown PCM ..." lines while devices are listed. They land in
the middle of ``callwatch check``'s report and the daemon's journal with no context, and read
as failures to the people who roll out headsets. What they say that matters (underruns,
devices that cannot be opened) callwatch already measures and reports in its own words. Here
ALSA's handler is replaced, once per process, by one that logs the message at debug level
under ``callwatch.alsa``.

The handler gets the message's format, not its arguments: ALSA's handler is variadic, and a
ctypes callback cannot read the arguments of a variadic call.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
from types import ModuleType

log = logging.getLogger("callwatch.alsa")

AlsaErrorHandler = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                    ctypes.c_int, ctypes.c_char_p)
"""``snd_lib_error_handler_t`` without its variadic tail."""


def _text(b: bytes | None) -> str:
    return b.decode(errors="replace") if b else ""


@AlsaErrorHandler
def _log_alsa_message(file: bytes | None, line: int, function: bytes | None, err: int,
                      fmt: bytes | None) -> None:
    # An exception cannot cross back into C (ctypes would print it to stderr instead).
    with contextlib.suppress(Exception):
        log.debug("ALSA: %s (%s:%d %s%s)", _text(fmt), _text(file), line, _text(function),
                  f", error {err}" if err else "")


_installed = False


def quiet_alsa() -> bool:
    """Route the ALSA library's messages to the log instead of stderr; whether ALSA is here.

    Safe to call again: the handler is installed once. The library is the one PortAudio loaded
    (same soname, same handle), so the handler applies to its messages."""
    global _installed
    if _installed:
        return True
    name = ctypes.util.find_library("asound") or "libasound.so.2"
    try:
        alsa = ctypes.CDLL(name)
        alsa.snd_lib_error_set_handler.argtypes = [AlsaErrorHandler]
        alsa.snd_lib_error_set_handler(_log_alsa_message)
    except (OSError, AttributeError):  # no ALSA (PortAudio without it): nothing to quiet
        return False
    _installed = True
    return True


def load_sounddevice() -> ModuleType:
    """The ``sounddevice`` module with ALSA's messages routed to the log (:func:`quiet_alsa`).

    Raises OSError when the PortAudio library is missing (Debian's libportaudio2)."""
    quiet_alsa()
    import sounddevice

    return sounddevice
