"""Helpers shared by the benchmark scripts: best-of-N timing, the machine description, the command
line and writing the results JSON.

The scripts run as ``python benchmarks/<name>.py``; Python then puts ``benchmarks/`` first on
``sys.path``, so ``from _common import ...`` works without installing anything.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BLAS_KEYS = ("internal_api", "num_threads", "version")


def best_time(call, repeats: int):
    """Run ``call`` ``repeats`` times; return the best wall time in seconds and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def blas_info(keys=BLAS_KEYS) -> list[dict]:
    """The BLAS / OpenMP libraries threadpoolctl sees, each reduced to ``keys``."""
    from threadpoolctl import threadpool_info

    return [{k: v for k, v in lib.items() if k in keys} for lib in threadpool_info()]


def machine_info(**extra) -> dict:
    """cpu_count, platform, python and numpy versions, then ``extra`` (library versions, BLAS, ...)."""
    import numpy as np

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__, **extra}


def command_line(script: str, argv=None) -> str:
    """``python benchmarks/<script> <arguments>``: ``argv`` when given, else the process's own arguments."""
    return " ".join(["python", f"benchmarks/{Path(script).name}", *(argv if argv is not None else sys.argv[1:])])


def save_results(path, report: dict, announce: str | None = "results saved to {}") -> None:
    """Write ``report`` as indented JSON to ``path`` (creating its folder), then print ``announce``
    formatted with the path (nothing when None)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=1) + "\n")
    if announce is not None:
        print(announce.format(path))
