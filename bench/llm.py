"""Benchmark: what the optional LLM path costs Narrate itself (not the model's time).

For each bundled sample and a wide synthetic table (200 columns), on this machine:

- building the "ask about this dataset" context from the stored profile (ms), and the
  prompt's size (characters, and tokens estimated as characters / 4);
- a whole ``ask`` and a whole ``reword`` through the real ``openai`` client, tenacity and
  the circuit breaker against the loopback fake server of the tests, which answers at
  once: Narrate's overhead per call (ms, best of N).

Run ``python bench/llm.py`` from the repository root (writes bench/results/llm.json).
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # tests.support.llm_server

from tests.support.llm_server import FakeLlm, answer  # noqa: E402

from narrate.bootstrap import build_container  # noqa: E402
from narrate.config import load_settings  # noqa: E402
from narrate.services import datasets, users  # noqa: E402
from narrate.services.llm_answers import _prompt, ask, reword  # noqa: E402
from narrate.services.llm_context import dataset_context  # noqa: E402
from narrate.storage.sql.visibility import Owner  # noqa: E402

OUT = HERE / "results" / "llm.json"
SAMPLES = HERE.parent / "src" / "narrate" / "samples"
REPEAT = 20
QUESTION = "Which column is missing most often?"
NARRATIVE = {
    "text": "82% likely 'bad' (the average is 63%), mainly because Income is 45 (+14 points).",
    "facts": [
        {"name": "probability", "value": 82, "source": "prediction"},
        {"name": "average", "value": 63, "source": "base_value"},
        {"name": "Income", "value": 45, "source": "row"},
        {"name": "points", "value": 14, "source": "contribution"},
    ],
}


def _best(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times) * 1000, 3)


def _wide(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    data = {f"x{i}": rng.normal(size=5000) for i in range(200)}
    path = folder / "wide.csv"
    pl.DataFrame(data).write_csv(path)
    return path


def main() -> None:
    """Run the benchmark and write the JSON results."""
    llm = FakeLlm().start()
    folder = Path(tempfile.mkdtemp(prefix="narrate-bench-llm-"))
    settings = load_settings(
        data_dir=folder / "data",
        load_samples=False,
        job_warmup=False,
        llm_base_url=llm.base_url,
        llm_model="bench",
    )
    container = build_container(settings, with_executor=False)
    container.db.upgrade()
    user = users.create_user(container.db, "bench", "a long bench passphrase 9431", "analyst")
    owner = Owner(user.id)
    files = {p.stem: p for p in sorted(SAMPLES.glob("*.csv"))} | {"wide_200": _wide(folder)}
    results: dict[str, Any] = {}
    try:
        for name, path in files.items():
            dataset = datasets.ingest_file(container, user.id, path, filename=path.name)
            ctx = dataset_context(container, owner, dataset["id"], QUESTION)
            prompt = "".join(m["content"] for m in _prompt(ctx, "dataset", QUESTION))
            llm.script(default=answer({"answer": "See F1.", "citations": ["F1"]}))
            results[name] = {
                "facts": len(ctx.facts),
                "prompt_chars": len(prompt),
                "prompt_tokens_est": len(prompt) // 4,
                "context_ms": _best(lambda d=dataset: dataset_context(container, owner, d["id"])),
                "ask_ms": _best(
                    lambda d=dataset: ask(container, owner, "dataset", d["id"], QUESTION)
                ),
            }
        llm.script(default=answer({"text": "82% likely 'bad'; usually 63%. Income 45: +14."}))
        results["reword_ms"] = _best(lambda: reword(container, NARRATIVE))
    finally:
        container.close()
        llm.stop()
    results["machine"] = {"python": platform.python_version(), "processor": platform.machine()}
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
