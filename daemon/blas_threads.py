"""One BLAS thread for the daemon: the processing loop's vectors are small, and on a 2-core
agent workstation an idle BLAS worker thread costs more than it ever saves.

Why: numpy's OpenBLAS starts a worker per core and hands a dot product or matrix product to
them once it is long enough (a second of samples is). After each such call the workers spin,
waiting for more work, before they sleep: measured on the live daemon, with the call
processed every 40 ms, that spinning cost 6 % of a core, more than everything else the daemon
did. One thread removes it. A long sum is then rounded as on a one-core machine (the threaded
one adds per-thread partial sums, so it already differs in its last bits between machines
with different core counts): the daemon's results no longer depend on the core count.

``OPENBLAS_NUM_THREADS=1`` in the environment does the same but must be set before numpy
loads; this sets it on the library already loaded, as threadpoolctl does (which is not a
dependency), and does nothing where numpy uses another BLAS.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
           "openblas_set_num_threads64_", "openblas_set_num_threads")
"""The thread-count setter under the names OpenBLAS builds export (numpy's wheels carry
``scipy_openblas``, 64-bit integer builds add the ``64_`` suffix; distributions' plain)."""


def limit_blas_threads(n: int = 1) -> list[str]:
    """Set every OpenBLAS loaded in this process to ``n`` threads; the libraries set (empty
    when numpy uses another BLAS, or none is loaded yet)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    libs = sorted({line.split(maxsplit=5)[-1] for line in maps.splitlines()
                   if "openblas" in line.lower() and ".so" in line})
    done = []
    for path in libs:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                setter(n)
                done.append(path)
                break
    return done
