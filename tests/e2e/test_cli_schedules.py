"""`narrate drift` and `narrate schedules ...` on a real data dir: a drift report of a
deployment's scored traffic with its narrative and columns; schedules added, listed,
paused, resumed, run now (the job runs in the CLI process) and their runs; bad inputs.

The model is trained through the services in this process and the commands run through
the real Typer app in this process (a subprocess pays seconds of imports per command).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
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
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data dir with a deployment 'credit' that scored 200 rows and one, 'quiet', that
    scored none; and the credit dataset's version id."""
    tmp = tmp_path_factory.mktemp("cli-schedules")
    folder = tmp / "data"
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
    _cli(folder, "deploy", mv_id, "--name", "quiet")  # it never answers a prediction
    rows = pl.read_csv(SAMPLES / "credit_data.csv").head(200).drop("Status")
    rows = rows.with_columns(pl.col("Income") * 4)  # a shift the report sees
    source = tmp / "new.csv"
    rows.write_csv(source)
    _cli(folder, "predict", "credit", "--file", str(source), "--out", str(tmp / "scored.csv"))
    return folder, dataset["version"]["id"]


def test_drift_prints_the_narrative_and_the_most_drifted_columns(world: tuple[Path, str]) -> None:
    data_dir, _ = world
    text = _cli(data_dir, "drift", "credit", "--window", "1d").stdout
    assert "Drift of credit over the last 1d:" in text
    assert "column" in text and "PSI" in text
    assert "Income" in text
    report = json.loads(_cli(data_dir, "drift", "credit", "--window", "1d", "--json").stdout)
    assert report["status"] == "ready"
    assert report["deployment"] == "credit"
    income = next(c for c in report["columns"] if c["column"] == "Income")
    assert income["level"] in ("medium", "high")
    assert report["narrative"]["text"] in text


def test_drift_errors_name_the_problem(world: tuple[Path, str]) -> None:
    data_dir, _ = world
    unknown = _cli(data_dir, "drift", "nope", check=False)
    assert unknown.exit_code == 2
    assert "nope" in unknown.stderr
    bad = _cli(data_dir, "drift", "credit", "--window", "7 years", check=False)
    assert bad.exit_code == 2
    assert "window '7 years' is not a window Narrate reads" in bad.stderr


def test_schedules_add_list_pause_resume_run_and_runs(world: tuple[Path, str]) -> None:
    data_dir, version_id = world
    out = _cli(
        data_dir,
        "schedules",
        "add",
        "--cron",
        "0 6 * * *",
        "--kind",
        "batch",
        "--deployment",
        "credit",
        "--version-id",
        version_id,
        "--name",
        "morning scoring",
        "--json",
    ).stdout
    item = json.loads(out)
    sid = item["schedule_id"]
    assert item["action"] == {"kind": "batch", "deployment": "credit", "version_id": version_id}
    listed = _cli(data_dir, "schedules", "list").stdout
    assert sid in listed and "active" in listed and "morning scoring" in listed
    assert _cli(data_dir, "schedules", "pause", sid).stdout.strip() == f"Paused schedule {sid}."
    assert "paused" in _cli(data_dir, "schedules", "list", "--deployment", "credit").stdout
    assert "next run at" in _cli(data_dir, "schedules", "resume", sid).stdout

    ran = _cli(data_dir, "schedules", "run", sid).stdout
    assert "Run " in ran and ": succeeded — Job " in ran
    runs = [
        json.loads(line)
        for line in _cli(data_dir, "schedules", "runs", sid, "--json").stdout.splitlines()
    ]
    assert [(r["trigger"], r["status"], r["job_status"]) for r in runs] == [
        ("manual", "succeeded", "succeeded")
    ]
    text = _cli(data_dir, "schedules", "runs", sid).stdout
    assert "#1 manual  succeeded" in text


def test_schedules_bad_inputs_name_the_field(world: tuple[Path, str]) -> None:
    data_dir, version_id = world
    base = ["schedules", "add", "--kind", "batch", "--deployment", "credit"]
    bad = _cli(data_dir, *base, "--cron", "61 * * * *", "--version-id", version_id, check=False)
    assert bad.exit_code == 2
    assert "cron '61 * * * *' is not a cron expression Narrate reads" in bad.stderr
    assert "minute hour" in bad.stderr
    no_version = _cli(data_dir, *base, "--cron", "0 6 * * *", check=False)
    assert no_version.exit_code == 2
    assert (
        "action.version_id (a dataset version) or action.path (s3://bucket/key) is required "
        "for a 'batch' action"
    ) in no_version.stderr.replace("\n", " ")
    kind = _cli(
        data_dir,
        "schedules",
        "add",
        "--cron",
        "0 6 * * *",
        "--kind",
        "explode",
        "--deployment",
        "credit",
        check=False,
    )
    assert kind.exit_code == 2
    assert "action.kind 'explode' is not an action Narrate schedules" in kind.stderr
    missing = _cli(data_dir, "schedules", "pause", "0" * 32, check=False)
    assert missing.exit_code == 2
    assert f"No schedule with id '{'0' * 32}'" in missing.stderr


def test_run_of_an_action_that_cannot_start_exits_1_with_the_reason(
    world: tuple[Path, str],
) -> None:
    data_dir, _ = world
    out = _cli(
        data_dir,
        "schedules",
        "add",
        "--cron",
        "0 6 * * *",
        "--kind",
        "drift",
        "--deployment",
        "quiet",
        "--window",
        "1d",
        "--max-retries",
        "0",
        "--json",
    ).stdout
    sid = json.loads(out)["schedule_id"]
    ran = _cli(data_dir, "schedules", "run", sid, check=False)
    assert ran.exit_code == 1
    assert ": failed — Could not start: Deployment 'quiet' logged no predictions" in ran.stdout
    assert "(attempt 1; no retries left)" in ran.stdout
