"""A thin ctypes binding of libpulse's asynchronous API: just what a record stream and a few
server queries need.

Why our own binding: ``pulsectl`` (the maintained ctypes binding) is for control and
discovery; it reads no audio stream beyond a peak meter on a blocking, non-threaded main loop.
``pasimple`` and other wrappers of libpulse-simple block in ``read()`` and cannot set the
options the daemon depends on: ``DONT_MOVE`` (an unplugged source kills the stream instead of
moving it silently to another device), ``monitor-stream`` (one application's playback only),
the suspended/moved notifications, the fragment size, or a timeout on a stalled source. The
asynchronous API on a ``pa_threaded_mainloop`` gives all of that, and it is the one interface
that both PulseAudio and PipeWire's ``pipewire-pulse`` serve.

Only the leading fields of the info structs are declared: they are read through pointers
libpulse owns, so a prefix is enough and stays valid across libpulse versions (the structs
only ever grow at the end).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

PA_SAMPLE_FLOAT32LE = 5
PA_CHANNELS_MAX = 32
PA_INVALID_INDEX = 0xFFFFFFFF
PA_CONTEXT_NOAUTOSPAWN = 0x1

# pa_context_state_t
CONTEXT_READY = 4
CONTEXT_FAILED = 5
CONTEXT_TERMINATED = 6

# pa_stream_state_t
STREAM_READY = 2
STREAM_FAILED = 3
STREAM_TERMINATED = 4

# pa_operation_state_t
OPERATION_RUNNING = 0

# pa_stream_flags_t
STREAM_INTERPOLATE_TIMING = 0x2
STREAM_AUTO_TIMING_UPDATE = 0x8
STREAM_DONT_MOVE = 0x200
STREAM_ADJUST_LATENCY = 0x2000

# pa_subscription_mask_t / event types
SUBSCRIPTION_MASK_SINK = 0x1
SUBSCRIPTION_MASK_SOURCE = 0x2
SUBSCRIPTION_MASK_SINK_INPUT = 0x4
SUBSCRIPTION_MASK_SERVER = 0x80
SUBSCRIPTION_EVENT_FACILITY_MASK = 0x0F
SUBSCRIPTION_EVENT_SINK_INPUT = 0x02

# pa_error_code_t (the ones worth a plain sentence)
ERR_CONNECTIONREFUSED = 6
ERR_NOENTITY = 5
ERR_KILLED = 12
ERR_CONNECTIONTERMINATED = 11


class SampleSpec(Structure):
    _fields_ = [("format", c_int), ("rate", c_uint32), ("channels", c_uint8)]


class ChannelMap(Structure):
    _fields_ = [("channels", c_uint8), ("map", c_int * PA_CHANNELS_MAX)]


class CVolume(Structure):
    _fields_ = [("channels", c_uint8), ("values", c_uint32 * PA_CHANNELS_MAX)]


class BufferAttr(Structure):
    _fields_ = [("maxlength", c_uint32), ("tlength", c_uint32), ("prebuf", c_uint32),
                ("minreq", c_uint32), ("fragsize", c_uint32)]


class ServerInfo(Structure):
    """Prefix of ``pa_server_info``."""

    _fields_ = [("user_name", c_char_p), ("host_name", c_char_p),
                ("server_version", c_char_p), ("server_name", c_char_p),
                ("sample_spec", SampleSpec), ("default_sink_name", c_char_p),
                ("default_source_name", c_char_p)]


class SourceInfo(Structure):
    """Prefix of ``pa_source_info``."""

    _fields_ = [("name", c_char_p), ("index", c_uint32), ("description", c_char_p),
                ("sample_spec", SampleSpec), ("channel_map", ChannelMap),
                ("owner_module", c_uint32), ("volume", CVolume), ("mute", c_int),
                ("monitor_of_sink", c_uint32), ("monitor_of_sink_name", c_char_p),
                ("latency", c_uint64), ("driver", c_char_p), ("flags", c_int),
                ("proplist", c_void_p), ("configured_latency", c_uint64),
                ("base_volume", c_uint32), ("state", c_int)]


SOURCE_SUSPENDED = 2
"""``PA_SOURCE_SUSPENDED`` in ``pa_source_state_t``."""


class SinkInfo(Structure):
    """Prefix of ``pa_sink_info``."""

    _fields_ = [("name", c_char_p), ("index", c_uint32), ("description", c_char_p),
                ("sample_spec", SampleSpec), ("channel_map", ChannelMap),
                ("owner_module", c_uint32), ("volume", CVolume), ("mute", c_int),
                ("monitor_source", c_uint32), ("monitor_source_name", c_char_p)]


class SinkInputInfo(Structure):
    """Prefix of ``pa_sink_input_info`` (up to its property list)."""

    _fields_ = [("index", c_uint32), ("name", c_char_p), ("owner_module", c_uint32),
                ("client", c_uint32), ("sink", c_uint32), ("sample_spec", SampleSpec),
                ("channel_map", ChannelMap), ("volume", CVolume), ("buffer_usec", c_uint64),
                ("sink_usec", c_uint64), ("resample_method", c_char_p), ("driver", c_char_p),
                ("mute", c_int), ("proplist", c_void_p)]


CONTEXT_NOTIFY_CB = CFUNCTYPE(None, c_void_p, c_void_p)
STREAM_NOTIFY_CB = CFUNCTYPE(None, c_void_p, c_void_p)
STREAM_REQUEST_CB = CFUNCTYPE(None, c_void_p, c_size_t, c_void_p)
SERVER_INFO_CB = CFUNCTYPE(None, c_void_p, POINTER(ServerInfo), c_void_p)
SOURCE_INFO_CB = CFUNCTYPE(None, c_void_p, POINTER(SourceInfo), c_int, c_void_p)
SINK_INFO_CB = CFUNCTYPE(None, c_void_p, POINTER(SinkInfo), c_int, c_void_p)
SINK_INPUT_INFO_CB = CFUNCTYPE(None, c_void_p, POINTER(SinkInputInfo), c_int, c_void_p)
SUBSCRIBE_CB = CFUNCTYPE(None, c_void_p, c_uint32, c_uint32, c_void_p)
SUCCESS_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p)


class LibPulseMissing(OSError):
    """libpulse (Debian ``libpulse0``) is not installed."""


_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pa_mainloop_new": (c_void_p, []),
    "pa_mainloop_free": (None, [c_void_p]),
    "pa_mainloop_get_api": (c_void_p, [c_void_p]),
    "pa_mainloop_iterate": (c_int, [c_void_p, c_int, c_void_p]),
    "pa_mainloop_wakeup": (None, [c_void_p]),
    "pa_mainloop_prepare": (c_int, [c_void_p, c_int]),
    "pa_mainloop_poll": (c_int, [c_void_p]),
    "pa_mainloop_dispatch": (c_int, [c_void_p]),
    "pa_threaded_mainloop_new": (c_void_p, []),
    "pa_threaded_mainloop_free": (None, [c_void_p]),
    "pa_threaded_mainloop_start": (c_int, [c_void_p]),
    "pa_threaded_mainloop_stop": (None, [c_void_p]),
    "pa_threaded_mainloop_lock": (None, [c_void_p]),
    "pa_threaded_mainloop_unlock": (None, [c_void_p]),
    "pa_threaded_mainloop_wait": (None, [c_void_p]),
    "pa_threaded_mainloop_signal": (None, [c_void_p, c_int]),
    "pa_threaded_mainloop_get_api": (c_void_p, [c_void_p]),
    "pa_proplist_new": (c_void_p, []),
    "pa_proplist_free": (None, [c_void_p]),
    "pa_proplist_sets": (c_int, [c_void_p, c_char_p, c_char_p]),
    "pa_proplist_gets": (c_char_p, [c_void_p, c_char_p]),
    "pa_context_new_with_proplist": (c_void_p, [c_void_p, c_char_p, c_void_p]),
    "pa_context_connect": (c_int, [c_void_p, c_char_p, c_int, c_void_p]),
    "pa_context_disconnect": (None, [c_void_p]),
    "pa_context_unref": (None, [c_void_p]),
    "pa_context_get_state": (c_int, [c_void_p]),
    "pa_context_errno": (c_int, [c_void_p]),
    "pa_context_set_state_callback": (None, [c_void_p, CONTEXT_NOTIFY_CB, c_void_p]),
    "pa_context_get_server_info": (c_void_p, [c_void_p, SERVER_INFO_CB, c_void_p]),
    "pa_context_get_source_info_list": (c_void_p, [c_void_p, SOURCE_INFO_CB, c_void_p]),
    "pa_context_get_sink_info_list": (c_void_p, [c_void_p, SINK_INFO_CB, c_void_p]),
    "pa_context_get_sink_input_info_list": (c_void_p, [c_void_p, SINK_INPUT_INFO_CB,
                                                       c_void_p]),
    "pa_context_set_subscribe_callback": (None, [c_void_p, SUBSCRIBE_CB, c_void_p]),
    "pa_context_subscribe": (c_void_p, [c_void_p, c_uint32, SUCCESS_CB, c_void_p]),
    "pa_operation_get_state": (c_int, [c_void_p]),
    "pa_operation_unref": (None, [c_void_p]),
    "pa_strerror": (c_char_p, [c_int]),
    "pa_stream_new_with_proplist": (c_void_p, [c_void_p, c_char_p, POINTER(SampleSpec),
                                               c_void_p, c_void_p]),
    "pa_stream_connect_record": (c_int, [c_void_p, c_char_p, POINTER(BufferAttr), c_int]),
    "pa_stream_disconnect": (c_int, [c_void_p]),
    "pa_stream_unref": (None, [c_void_p]),
    "pa_stream_get_state": (c_int, [c_void_p]),
    "pa_stream_set_state_callback": (None, [c_void_p, STREAM_NOTIFY_CB, c_void_p]),
    "pa_stream_set_read_callback": (None, [c_void_p, STREAM_REQUEST_CB, c_void_p]),
    "pa_stream_set_suspended_callback": (None, [c_void_p, STREAM_NOTIFY_CB, c_void_p]),
    "pa_stream_set_moved_callback": (None, [c_void_p, STREAM_NOTIFY_CB, c_void_p]),
    "pa_stream_set_monitor_stream": (c_int, [c_void_p, c_uint32]),
    "pa_stream_peek": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)]),
    "pa_stream_drop": (c_int, [c_void_p]),
    "pa_stream_readable_size": (c_size_t, [c_void_p]),
    "pa_stream_is_suspended": (c_int, [c_void_p]),
    "pa_stream_get_latency": (c_int, [c_void_p, POINTER(c_uint64), POINTER(c_int)]),
    "pa_stream_get_buffer_attr": (POINTER(BufferAttr), [c_void_p]),
    "pa_stream_get_device_name": (c_char_p, [c_void_p]),
}

_LIB: Any = None
_HELD: Any = None

HELD = ("pa_mainloop_iterate", "pa_stream_peek", "pa_stream_drop", "pa_stream_readable_size")
"""The calls the processing loop makes per tick that never wait: with ``block=0`` the main loop
only polls. Through :func:`libpulse_held` they keep the interpreter lock."""


def libpulse() -> Any:
    """The loaded library with every function's signature declared (loaded once)."""
    global _LIB
    if _LIB is None:
        name = ctypes.util.find_library("pulse") or "libpulse.so.0"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            raise LibPulseMissing(
                "libpulse is not installed (Debian package libpulse0)") from None
        for fn, (restype, argtypes) in _SIGNATURES.items():
            f = getattr(lib, fn)
            f.restype = restype
            f.argtypes = argtypes
        _LIB = lib
    return _LIB


def libpulse_held() -> Any:
    """The same library loaded as a ``ctypes.PyDLL``: its calls keep the interpreter lock.

    Why: every call through a plain ``CDLL`` releases the lock and takes it back, and while
    another thread runs (the alert server, a scrape), taking it back means waiting for that
    thread to hand it over (a forced switch). The loop makes a few dozen such calls per block
    (a peek and a drop for every server packet); none of them waits for anything, so holding
    the lock through them costs nothing. Only :data:`HELD` functions are declared, and
    ``pa_mainloop_iterate`` must be called with ``block=0`` through it: a call that sleeps
    must go through :func:`libpulse`."""
    global _HELD
    if _HELD is None:
        libpulse()  # the same checks and error when libpulse is missing
        lib = ctypes.PyDLL(ctypes.util.find_library("pulse") or "libpulse.so.0")
        for fn in HELD:
            restype, argtypes = _SIGNATURES[fn]
            f = getattr(lib, fn)
            f.restype = restype
            f.argtypes = argtypes
        _HELD = lib
    return _HELD


def strerror(code: int) -> str:
    text = libpulse().pa_strerror(code)
    return text.decode(errors="replace") if text else f"error {code}"


def text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value else ""


def release_context(lib: Any, ctx: Any) -> None:
    """Disconnect and drop a context, its state callback detached first so that no callback
    reaches Python code that is being torn down. The one way both the record streams and the
    server queries close their connection."""
    lib.pa_context_set_state_callback(ctx, CONTEXT_NOTIFY_CB(), None)
    lib.pa_context_disconnect(ctx)
    lib.pa_context_unref(ctx)
