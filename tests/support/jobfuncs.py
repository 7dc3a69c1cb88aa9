"""Job functions used by the executor tests (run in real worker processes)."""

from __future__ import annotations

import time
from typing import Any

from narrate.errors import DataProblem
from narrate.jobs.context import JobContext


def count_slowly(ctx: JobContext) -> dict[str, Any]:
    """Count to ``params.n`` with a pause per step, reporting progress; cancellable."""
    n = int(ctx.params.get("n", 5))
    for i in range(n):
        ctx.progress(i / n, f"step {i + 1} of {n}", data={"i": i})
        time.sleep(float(ctx.params.get("pause", 0.05)))
    return {"counted": n}


def fail_with_data_problem(ctx: JobContext) -> dict[str, Any]:
    """Fail the way domain code does."""
    raise DataProblem("Row 3 has 2 fields; expected 3.", details={"line": 3})


def crash(ctx: JobContext) -> dict[str, Any]:
    """Fail the way a bug does."""
    return {"x": 1 / int(ctx.params.get("zero", 0))}
