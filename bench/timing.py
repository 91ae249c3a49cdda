"""The timing loop the one-core benchmarks share: repeated passes in CPU time, GC off while timing.

``bench/*.py`` scripts run with ``bench/`` first on ``sys.path``, so they import it as ``timing``.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable


def cpu_passes(run: Callable[[], int], min_seconds: float, min_passes: int = 3) -> tuple[list[float], int]:
    """CPU seconds of each pass of ``run`` (at least ``min_passes``, at least ``min_seconds`` in all),
    and what the last pass returned (a count of findings, to show the work was done)."""
    seconds: list[float] = []
    result = 0
    gc.collect()
    gc.disable()
    try:
        while sum(seconds) < min_seconds or len(seconds) < min_passes:
            t0 = time.process_time()
            result = run()
            seconds.append(time.process_time() - t0)
    finally:
        gc.enable()
    return seconds, result
