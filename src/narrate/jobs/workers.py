"""Job worker processes die with the server, and a crashed server's workers are reaped.

A spawned pool worker blocks on a queue whose pipe it also holds open for writing, so it
never notices that its server died: after a ``kill -9`` (or a segfault) of ``narrate
serve`` each worker, and multiprocessing's resource tracker that waits for them, lived on
as an orphan of ~330 MB. Three layers stop that:

1. :func:`init_worker` asks Linux to SIGKILL the worker when its parent goes
   (``prctl(PR_SET_PDEATHSIG)``);
2. a watchdog thread in the worker exits when its parent process id changes (the portable
   fallback, and a guard against a parent that died before the ``prctl``);
3. every worker registers itself in ``<data dir>/run/workers``; :func:`reap_orphan_workers`
   runs when the next executor starts and kills the registered workers whose server is
   gone, after checking that the pid still belongs to that same worker process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

__all__ = [
    "WATCHDOG_INTERVAL_S",
    "init_worker",
    "reap_orphan_workers",
    "register_worker",
    "registry_dir",
    "unregister_workers",
]

log = logging.getLogger(__name__)

WATCHDOG_INTERVAL_S = 0.5
"""How often a worker checks that its parent is still the process that started it."""
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_WORKER_MARK = "--multiprocessing-fork"  # on the command line of every spawned worker


def registry_dir(data_dir: Path) -> Path:
    """The folder where live workers register (one ``<pid>.json`` file each).

    Args:
        data_dir: The Narrate data folder.

    Returns:
        ``<data dir>/run/workers`` (not created here).
    """
    return data_dir / "run" / "workers"


def init_worker(registry: str, parent_pid: int) -> None:
    """Pool initializer: die with the parent and register for reaping after a crash.

    Args:
        registry: Folder to register this worker in (see :func:`registry_dir`).
        parent_pid: Process id of the server that started the pool.
    """
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="narrate-parent-watchdog", daemon=True
    ).start()
    try:
        register_worker(Path(registry), os.getpid(), parent_pid)
    except OSError as exc:  # without a record this worker is only not reapable
        log.warning("could not register job worker %d: %s", os.getpid(), exc)


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    except (OSError, AttributeError) as exc:  # no libc prctl: the watchdog still works
        log.warning("prctl is unavailable: %s", exc)


def _watch_parent(parent_pid: int) -> None:
    """Exit as soon as the parent is gone (the process is re-parented to another pid)."""
    stop = threading.Event()
    while not stop.wait(WATCHDOG_INTERVAL_S):
        if os.getppid() != parent_pid:
            os._exit(1)  # no clean-up: the server that owned our work is gone


def register_worker(registry: Path, pid: int, parent_pid: int) -> Path:
    """Record a worker with its and its parent's start times (to detect pid reuse).

    Args:
        registry: Folder of worker records.
        pid: The worker's process id.
        parent_pid: The server's process id.

    Returns:
        The record file written.
    """
    registry.mkdir(parents=True, exist_ok=True, mode=0o700)
    record = {
        "pid": pid,
        "started": _started(pid),
        "parent_pid": parent_pid,
        "parent_started": _started(parent_pid),
    }
    path = registry / f"{pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(path)
    return path


def unregister_workers(registry: Path, pids: list[int]) -> None:
    """Remove the records of workers that were ended cleanly.

    Args:
        registry: Folder of worker records.
        pids: Process ids of the ended workers.
    """
    for pid in pids:
        (registry / f"{pid}.json").unlink(missing_ok=True)


def reap_orphan_workers(registry: Path) -> list[int]:
    """Kill registered workers whose server has died; return the pids killed.

    A record is dropped once its server is gone. Its worker is killed only when the pid
    still runs the very process that registered (same start time) and looks like a
    spawned multiprocessing worker, so a pid reused by another program is never hit.
    Records of a live server (another ``narrate serve`` on the same data dir) are kept.

    Args:
        registry: Folder of worker records.

    Returns:
        Process ids that were sent SIGKILL.
    """
    if not registry.is_dir():
        return []
    killed = []
    for path in sorted(registry.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            pid, parent = int(record["pid"]), int(record["parent_pid"])
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing can be verified from it
            continue
        if record.get("parent_started") and _started(parent) == record["parent_started"]:
            continue  # the server that owns it is alive
        if _is_our_worker(pid, record.get("started")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        path.unlink(missing_ok=True)
    if killed:
        log.warning("killed %d job worker(s) left by a previous run: %s", len(killed), killed)
    return killed


def _is_our_worker(pid: int, started: str | None) -> bool:
    if not started or _started(pid) != started:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _WORKER_MARK.encode() in cmdline


def _started(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (Linux), or None when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    # Field 22 of /proc/<pid>/stat; after the ")" that ends the name it is the 20th.
    return fields[19] if len(fields) > 19 else None
