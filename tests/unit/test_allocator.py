"""Importing narrate (before polars) configures polars' allocator.

polars appends the variable's value to its own defaults on import, so the last setting
of each option is the one jemalloc uses.
"""

from __future__ import annotations

import os
import subprocess
import sys

from narrate import JEMALLOC_CONF

_PROBE = "import narrate, os, polars; print(os.environ['_RJEM_MALLOC_CONF'])"


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_importing_narrate_sets_the_allocator_config() -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    assert _probe(env).endswith("," + JEMALLOC_CONF)
    assert "dirty_decay_ms:100" in JEMALLOC_CONF


def test_an_operators_allocator_config_wins() -> None:
    configured = _probe({**os.environ, "_RJEM_MALLOC_CONF": "narenas:1"})
    assert configured.endswith(",narenas:1")
    assert JEMALLOC_CONF not in configured
