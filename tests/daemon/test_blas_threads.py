"""The daemon runs numpy's OpenBLAS on one thread (its workers' spinning after every long dot
product cost more CPU than the pipeline itself); a long sum is then rounded as on a one-core
machine, within a few ulps of the threaded one."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import ctypes, numpy as np
from daemon.blas_threads import limit_blas_threads
x = np.random.default_rng(0).standard_normal(100_000)
before = float(x @ x)
libs = limit_blas_threads()
if not libs:
    print("no openblas")
else:
    lib = ctypes.CDLL(libs[0])
    get = next(getattr(lib, n) for n in ("scipy_openblas_get_num_threads64_",
               "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
               "openblas_get_num_threads") if hasattr(lib, n))
    print(get(), abs(float(x @ x) - before) <= 1e-12 * before)
"""


def test_openblas_is_limited_to_one_thread():
    # In a child: the setting is process-wide and must not change this test process.
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out in (["1", "True"], ["no", "openblas"]), out
