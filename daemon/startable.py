"""What only a start would find out: problems a valid config file can still have that would
stop ``callwatch run`` at start (``callwatch run --check-config`` reports them).

Kept apart from :mod:`daemon.config` because it needs what the config only describes: the
control socket's path (:mod:`daemon.control`), the metrics endpoint's TLS context
(:mod:`daemon.metrics_server`) and the capture devices (:func:`check_devices`).
"""

from __future__ import annotations

import os
import socket

from daemon.config import Config, show
from daemon.control import socket_path
from daemon.device_choice import DeviceError, NoInputDevices
from daemon.devices import resolve
from daemon.metrics_server import MetricsServerError, _tls_context
from daemon.portaudio import load_sounddevice
from daemon.pulse_capture import choose_backend
from daemon.pulse_streams import PulseUnavailable, resolve_source, server_view

UNIX_PATH_MAX = 107
"""Longest Unix socket path Linux binds (``sun_path`` is 108 bytes with the final NUL)."""


def check_startable(cfg: Config) -> list[str]:
    """Problems a valid file can still have that would stop ``callwatch run`` at start: an
    address that does not resolve, unreadable TLS files, a control socket path that cannot be
    bound. ``--check-config`` reports them so they are not found out by a failed restart."""
    where = cfg.path or "(defaults)"
    problems: list[str] = []
    for table, host_key in (("server", "host"), ("metrics", "listen_address")):
        settings = getattr(cfg, table)
        if settings is None or not getattr(settings, "enabled", True):
            continue
        host = getattr(settings, host_key)
        try:
            socket.getaddrinfo(host or None, settings.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            problems.append(f"{where}: [{table}] {host_key} = {show(host)}: does not resolve "
                            f"({reason}); use 127.0.0.1, 0.0.0.0 or one of this host's names")
    metrics = cfg.metrics
    if metrics is not None and metrics.enabled and metrics.tls_cert_file:
        try:
            _tls_context(metrics)
        except MetricsServerError as exc:
            problems.append(f"{where}: {exc}")
    problems += _socket_path_problems(cfg, where)
    return problems


def _socket_path_problems(cfg: Config, where: str) -> list[str]:
    path = socket_path(cfg.control)
    key = f"{where}: [control] socket_path = {show(str(path))}"
    if "\0" in str(path):
        return [f"{key}: contains a NUL character"]
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        return [f"{key}: longer than the {UNIX_PATH_MAX} bytes a Unix socket path may have; "
                "choose a shorter path"]
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink() or parent == parent.parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return [f"{key}: {parent} is not a directory"]
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        return [f"{key}: cannot create anything in {parent} (permission denied)"]
    if path.is_dir():
        return [f"{key}: is a directory"]
    return []


def check_devices(cfg: Config) -> tuple[list[str], str | None]:
    """Whether ``[capture] mic_device`` and ``far_end_device`` name devices of this machine as
    it is now (a start refuses a name that matches nothing): ``(problems, note)``, the note
    saying why the devices were not checked when no sound server answers, as on a machine
    that builds an image, or one whose headset user is not logged in."""
    where = cfg.path or "(defaults)"
    cap = cfg.capture
    specs = (("mic", "mic_device", cap.mic_device),
             ("far end", "far_end_device", cap.far_end_device))
    try:
        view = server_view()
    except PulseUnavailable as exc:
        view = None
        if cap.backend != "portaudio":
            return [], f"devices not checked: {exc}"
    try:
        backend, _ = choose_backend(cap)
    except DeviceError as exc:
        return [f"{where}: {exc}"], None
    problems = []
    try:
        sd = load_sounddevice() if backend == "portaudio" else None
        for role, key, spec in specs:
            try:
                if view is not None and backend == "pulse":
                    resolve_source(view, spec, role, key)
                else:
                    resolve(sd, spec, role, key)
            except NoInputDevices as exc:
                return [], f"devices not checked: {exc}"
            except DeviceError as exc:
                problems.append(f"{where}: {exc}")
    except OSError as exc:  # no PortAudio library
        return [], f"devices not checked: {exc}"
    return problems, None
