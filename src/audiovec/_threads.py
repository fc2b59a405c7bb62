"""How many CPU threads a model may use in this process: the one rule every backend follows.

A process uses every core available to it, unless ``AUDIOVEC_NUM_THREADS`` says otherwise. The ingest path's worker
processes set it (and the usual OpenMP/BLAS/TensorFlow variables) to their share of the cores, so ``N`` workers on
``N`` cores run one model thread each instead of ``N`` threads each fighting for the same cores.
"""

from __future__ import annotations

import os
import sys

__all__ = ["THREADS_ENV", "available_cores", "limit_threads", "thread_budget"]

#: Environment variable that caps the threads of every model in the process.
THREADS_ENV = "AUDIOVEC_NUM_THREADS"

#: Variables the numeric libraries read when they start (OpenMP, OpenBLAS, MKL, numexpr, TensorFlow).
_LIBRARY_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def thread_budget() -> int:
    """Threads a model may use: ``$AUDIOVEC_NUM_THREADS`` when set to a positive number, else every core."""
    raw = os.environ.get(THREADS_ENV, "")
    if raw.strip().isdigit() and int(raw) > 0:
        return int(raw)
    return available_cores()


def limit_threads(n: int) -> None:
    """Cap this process's model threads at ``n``: call before the numeric libraries start (a fresh worker process)."""
    value = str(max(1, int(n)))
    os.environ[THREADS_ENV] = value
    for name in _LIBRARY_ENV:
        os.environ[name] = value
    # the BLAS and OpenMP pools of libraries already loaded (numpy's OpenBLAS) read the variables when they loaded
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(value))
    torch = sys.modules.get("torch")
    if torch is not None:  # torch reads OMP_NUM_THREADS only when first imported
        torch.set_num_threads(int(value))
