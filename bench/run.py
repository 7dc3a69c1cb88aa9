"""Run every benchmark script in bench/ and collect their JSON results.

Every script in bench/ with a ``__main__`` block is a benchmark (the others are modules
they share): a plain script that writes one JSON document, to ``--out PATH`` when it takes
that option, else to ``bench/results/<name>.json``. This runner calls each in its own
process (so memory and CPU numbers do not bleed between them), passes ``--quick`` to
those that take it, and writes ``bench/results/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. api")
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = parser.parse_args()
    scripts = sorted(
        p
        for p in HERE.glob("*.py")
        if p.name != Path(__file__).name and "__main__" in p.read_text(encoding="utf-8")
    )
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    results = {}
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        text = script.read_text(encoding="utf-8")
        out = HERE / "results" / f"{name}.json"
        cmd = [sys.executable, str(script)]
        if '"--out"' in text:
            cmd += ["--out", str(out)]
        if args.quick and '"--quick"' in text:
            cmd.append("--quick")
        print(f"== {name}", flush=True)
        started = time.monotonic()
        proc = subprocess.run(cmd, check=False)
        results[name] = {
            "ok": proc.returncode == 0,
            "seconds": round(time.monotonic() - started, 1),
            "result": json.loads(out.read_text()) if out.exists() else None,
        }
    (HERE / "results" / "summary.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v["ok"] for k, v in results.items()}))
    return 0 if all(v["ok"] for v in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
