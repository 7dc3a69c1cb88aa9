"""`narrate actuals upload` and `narrate performance` on a real data dir: score a file with
a deployment, upload the true labels of those rows, and read the live metrics back.

The model is trained through the services in this process and the commands run through
the real Typer app in this process (a subprocess pays seconds of imports per command).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from sklearn import metrics as skm
from tests.conftest import SAMPLES
from typer.testing import CliRunner, Result

from narrate.bootstrap import build_container
from narrate.cli import app
from narrate.config import load_settings
from narrate.jobs.executors import InlineExecutor
from narrate.services import datasets, models, training, users
from narrate.services.datasets import Owner

pytestmark = pytest.mark.e2e


def _cli(data_dir: Path, *args: str, check: bool = True) -> Result:
    """Run a command through the real app in this process, on ``data_dir`` only."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(data_dir)
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if check and result.exit_code != 0:
        raise AssertionError(f"narrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with one model of credit_data → Status (baseline + linear, 2 trials)."""
    folder = tmp_path_factory.mktemp("monitor") / "data"
    settings = load_settings(data_dir=folder, load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    try:
        container.db.upgrade()
        admin = users.create_user(container.db, "admin", "maple-anchor-123", "admin")
        owner = Owner(admin.id, True)
        dataset = datasets.ingest_file(
            container,
            admin.id,
            SAMPLES / "credit_data.csv",
            filename="credit_data.csv",
            target="Status",
        )
        options = {"time_budget_s": 10, "max_trials": 2, "families": ["baseline", "linear"]}
        model_id = training.start_training(container, owner, dataset["id"], options)["model_id"]
        mv_id = models.get_model(container, owner, model_id)["versions"][0]["id"]
    finally:
        container.close()
    _cli(folder, "deploy", mv_id, "--name", "credit")
    return folder


def test_upload_actuals_then_read_performance(data_dir: Path, tmp_path: Path) -> None:
    rows = pl.read_csv(SAMPLES / "credit_data.csv").slice(100, 150)
    source = tmp_path / "new.csv"
    rows.drop("Status").write_csv(source)
    scored_path = tmp_path / "scored.csv"
    _cli(data_dir, "predict", "credit", "--file", str(source), "--out", str(scored_path))
    scored = pl.read_csv(scored_path)
    labels = tmp_path / "labels.csv"
    pl.DataFrame({"pid": scored["prediction_id"], "outcome": rows["Status"]}).write_csv(labels)

    out = _cli(
        data_dir,
        "actuals",
        "upload",
        "credit",
        str(labels),
        "--id-column",
        "pid",
        "--actual-column",
        "outcome",
    ).stdout
    assert "Recorded 150 actuals for credit: 150 matched a logged prediction, 0 replaced" in out

    result = json.loads(_cli(data_dir, "performance", "credit", "--json").stdout)
    latest = result["windows"][-1]
    assert latest["n"] == 150
    expected = skm.accuracy_score(rows["Status"].to_list(), scored["prediction"].to_list())
    assert latest["metrics"]["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert result["degraded"] is False

    text = _cli(data_dir, "performance", "credit", "--window", "7d").stdout
    assert "credit — model version" in text
    assert "baseline (holdout)" in text
    assert "150 labelled predictions" in text


def test_upload_errors_name_the_column_and_line(data_dir: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("pid,outcome\nabc,good\ndef,perhaps\n")
    missing = _cli(
        data_dir,
        "actuals",
        "upload",
        "credit",
        str(labels),
        "--id-column",
        "id",
        "--actual-column",
        "outcome",
        check=False,
    )
    assert missing.exit_code != 0
    assert "Column 'id' (id_column) is not in the file" in missing.stderr
    bad = _cli(
        data_dir,
        "actuals",
        "upload",
        "credit",
        str(labels),
        "--id-column",
        "pid",
        "--actual-column",
        "outcome",
        check=False,
    )
    assert bad.exit_code != 0
    assert "Row 1: the actual 'perhaps' is not a class of 'Status'" in bad.stderr
    unknown = _cli(data_dir, "performance", "nope", check=False)
    assert unknown.exit_code != 0
    assert "nope" in unknown.stderr
