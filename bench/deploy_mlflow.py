"""MLflow's side of the Deploy benchmark: its own venv, the same model, ``models serve``.

MLflow pins libraries Narrate moves past, so it lives in ``bench/.venv-mlflow`` (made by
``make bench`` or by :func:`ensure_venv`) with narrate installed there too (editable), so
that the pipeline Narrate trained unpickles in it. The model is saved as an MLflow pyfunc
from code (bench/deploy_mlflow_model.py) around the file downloaded from Narrate.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = ["VENV", "ensure_venv", "mlflow_env", "predict_file", "save_model", "serve"]

HERE = Path(__file__).parent
REPO = HERE.parent
VENV = HERE / ".venv-mlflow"


def mlflow_env() -> dict[str, str]:
    """The environment for MLflow commands: no telemetry, no tracking server, quiet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATE_", "MLFLOW_"))}
    env |= {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_TRACKING_URI": "file://" + str(Path(tempfile.gettempdir()) / "mlruns-bench"),
        "PYTHONWARNINGS": "ignore",
        # `models serve` runs `uvicorn` by name: it must find the venv's
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return env


def ensure_venv(venv: Path = VENV) -> Path:
    """Create the MLflow venv (mlflow + narrate editable) unless it exists; its python.

    Args:
        venv: Where the venv lives.

    Returns:
        The venv's python executable.
    """
    python = venv / "bin" / "python"
    if not (venv / "bin" / "mlflow").exists():
        print(f"creating {venv} (mlflow + narrate; a minute or two)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "mlflow"], check=True)
        subprocess.run([*pip, "-e", str(REPO)], check=True)
    return python


def version(venv: Path = VENV) -> str:
    """The installed MLflow version."""
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
        env=mlflow_env(),
    )
    return out.stdout.strip()


_SAVE = """
import json, sys
import pandas as pd
import mlflow
model_file, fmt, example_json, dest, code = sys.argv[1:6]
example = pd.DataFrame(json.loads(open(example_json).read()))
mlflow.pyfunc.save_model(
    dest,
    python_model=code,
    artifacts={"model": model_file},
    model_config={"format": fmt},
    input_example=example,
    pip_requirements=["mlflow", "narrate"],  # skip the slow requirement inference
)
"""


def save_model(model_file: Path, fmt: str, example_rows: list[dict[str, Any]], dest: Path) -> Path:
    """Save a Narrate model file as an MLflow pyfunc model directory.

    Args:
        model_file: The file downloaded from ``/model-versions/{id}/artifact``.
        fmt: ``joblib`` or ``serving`` (which format the file is in).
        example_rows: A few raw rows; MLflow infers the input signature from them and
            enforces it on every request, as a logged model does.
        dest: The model directory to create.

    Returns:
        ``dest``.
    """
    example = dest.parent / f"{dest.name}-example.json"
    example.write_text(json.dumps(example_rows))
    subprocess.run(
        [
            str(VENV / "bin" / "python"),
            "-c",
            _SAVE,
            str(model_file),
            fmt,
            str(example),
            str(dest),
            str(HERE / "deploy_mlflow_model.py"),
        ],
        check=True,
        env=mlflow_env(),
        capture_output=True,
    )
    return dest


@contextmanager
def serve(model_dir: Path, port: int, workers: int, log: Path) -> Iterator[tuple[str, int]]:
    """Run ``mlflow models serve`` on loopback until the block ends.

    Args:
        model_dir: An MLflow model directory.
        port: A free loopback port.
        workers: Its uvicorn ``--workers``.
        log: Where its output goes.

    Yields:
        The base URL and the process id (its workers are descendants).
    """
    cmd = [
        str(VENV / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model_dir),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        str(workers),
    ]
    with log.open("w") as fh:
        # its own session, so stopping it stops the uvicorn workers it starts too
        proc = subprocess.Popen(cmd, env=mlflow_env(), stdout=fh, stderr=fh, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started, SIGKILL it after 30 s."""
    for sig, wait_s in ((signal.SIGTERM, 30.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):  # the group has already gone
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def predict_file(model_dir: Path, csv: Path, out: Path) -> subprocess.Popen[bytes]:
    """Start ``mlflow models predict`` on a CSV file (the caller waits and measures).

    Args:
        model_dir: An MLflow model directory.
        csv: The rows to score (CSV; the command reads JSON or CSV, not Parquet).
        out: Where it writes the predictions.

    Returns:
        The running process.
    """
    cmd = [
        str(VENV / "bin" / "mlflow"),
        "models",
        "predict",
        "-m",
        str(model_dir),
        "-i",
        str(csv),
        "-t",
        "csv",
        "-o",
        str(out),
        "--env-manager",
        "local",
    ]
    return subprocess.Popen(
        cmd, env=mlflow_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
