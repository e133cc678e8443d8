"""How many processes a run may use: here, not in :mod:`policykit.parallel`,
so that a run too small for a pool does not import it (issue 21: start-up)."""

from __future__ import annotations

import os

MIN_FILES = 256
"""Below this many files a run stays in one process: starting the pool and
sending results back costs more than it saves (benchmarks/bench_cores.py)."""


def default_jobs() -> int:
    """The number of cores this process may use."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return int(count() or 1)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
