"""Where a server's time goes while it is under load: py-spy on the process tree.

Used by bench/deploy.py when Narrate misses a target. py-spy samples the server and its
job workers (``--subprocesses``) from outside, without changing them, and writes collapsed
stacks; :func:`summarise` turns them into the functions with the most samples: ``self``
(the frame on top of the stack) and ``inclusive`` (anywhere on it, counted once per
sample). py-spy is installed into bench/.venv-mlflow so the project's venv stays as it is.
"""

from __future__ import annotations

import collections
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from deploy_mlflow import VENV

__all__ = ["ensure_py_spy", "profile_during", "summarise"]

T = TypeVar("T")

_PYTHON_FRAME = re.compile(r" \(.+:\d+\)$")  # "function (path/file.py:123)"


def ensure_py_spy() -> Path | None:
    """The py-spy executable, installed into bench/.venv-mlflow if missing (None: no pip)."""
    found = VENV / "bin" / "py-spy"
    if found.exists():
        return found
    if not (VENV / "bin" / "pip").exists():
        on_path = shutil.which("py-spy")
        return Path(on_path) if on_path else None
    subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", "py-spy"], check=False)
    return found if found.exists() else None


def profile_during(pid: int, out: Path, action: Callable[[], T]) -> tuple[T, dict[str, Any]]:
    """Run ``action`` while py-spy samples ``pid`` and its children; summarise the stacks.

    Args:
        pid: The server's process id.
        out: Where the collapsed stacks go (kept for a flame graph).
        action: What to run meanwhile (e.g. a load run); its result is passed back.

    Returns:
        The action's result and :func:`summarise` of the samples (or why there are none).
    """
    py_spy = ensure_py_spy()
    if py_spy is None:
        return action(), {"skipped": "py-spy is not available"}
    cmd = [
        str(py_spy),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",  # don't pause the server to sample it: less distortion
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attaches before the load starts
    try:
        result = action()
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl+C
        _, err = spy.communicate(timeout=60)
    if not out.exists():
        return result, {"skipped": f"py-spy wrote nothing: {err.decode()[-500:]}"}
    return result, summarise(out)


def _frame_name(frame: str) -> str:
    # "function (package/module.py:123)" -> "function (package/module.py)": one row a function
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def _is_narrate(frame: str) -> bool:
    # py-spy names files by module path, e.g. "predict (narrate/web/api/deployments.py:600)"
    return " (narrate/" in frame


def summarise(collapsed: Path, top: int = 25) -> dict[str, Any]:
    """The functions with the most samples in a py-spy ``--format raw`` file.

    Args:
        collapsed: Lines ``frame;frame;...;leaf count`` (process and thread first).
        top: How many functions to list in each table.

    Returns:
        Total samples; ``self``: the functions on top of the stack, all code; and
        ``inclusive_narrate``: Narrate's own functions anywhere on the stack (where in
        Narrate the time goes, callees included). Rows are ``[function, share]``.
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if _PYTHON_FRAME.search(f)]
        if not frames:
            continue
        total += count
        own[_frame_name(frames[-1])] += count
        for name in {_frame_name(f) for f in frames if _is_narrate(f)}:
            inclusive[name] += count
    return {
        "samples": total,
        "self": [[name, round(n / total, 3)] for name, n in own.most_common(top)],
        "inclusive_narrate": [
            [name, round(n / total, 3)] for name, n in inclusive.most_common(top)
        ],
    }
