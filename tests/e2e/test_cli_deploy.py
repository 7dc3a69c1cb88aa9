"""`narrate deploy`, `narrate deployments` and `narrate predict` on a real data dir holding
a small model in two versions.

The model is trained through the services in this process. The commands run through the
real Typer app in this process too (a subprocess pays about 3 s of imports per command),
except where the process boundary is the point: the installed `narrate` script scores a
row and has written it to the prediction log when it exits, and a failing batch job ends
the process with a message, not a traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import SAMPLES
from typer.testing import CliRunner, Result

from narrate.bootstrap import Container, build_container
from narrate.cli import app
from narrate.config import load_settings
from narrate.jobs.executors import InlineExecutor
from narrate.services import datasets, models, training, users
from narrate.services.datasets import Owner

pytestmark = pytest.mark.e2e

ROW = re.compile(r"^Row 1: (bad|good)$", re.MULTILINE)
PROBABILITIES = re.compile(r"^  probabilities: bad (0\.\d{4}), good (0\.\d{4})$", re.MULTILINE)


@dataclass(frozen=True)
class Trained:
    """A data dir with one model of credit_data → Status in two versions (v2 a refit)."""

    data_dir: Path
    v1: str
    v2: str


def _narrate(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the installed `narrate` script on ``data_dir`` only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(data_dir)
    exe = str(Path(sys.executable).parent / "narrate")
    result = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"narrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def _cli(data_dir: Path, *args: str, check: bool = True, stdin: str | None = None) -> Result:
    """Run a command through the real app in this process, on ``data_dir`` only."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(data_dir)
    result = CliRunner().invoke(app, list(args), env=env, input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug: the CLI must turn every expected error into a message
    if check and result.exit_code != 0:
        raise AssertionError(f"narrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Train baseline + linear (2 trials) and refit it: two versions of one model."""
    data_dir = tmp_path_factory.mktemp("deploy") / "data"
    settings = load_settings(data_dir=data_dir, load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)  # jobs run here, to the end, on submit
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
        models.start_refit(container, owner, model_id, None)
        versions = models.get_model(container, owner, model_id)["versions"]
    finally:
        container.close()
    assert [v["number"] for v in versions] == [1, 2], versions
    return Trained(data_dir, versions[0]["id"], versions[1]["id"])


def _new_rows(tmp_path: Path, n: int, *, drop: str = "Status") -> Path:
    """The first n rows of credit_data without a column, as a CSV file to score."""
    path = tmp_path / "new.csv"
    pl.read_csv(SAMPLES / "credit_data.csv").head(n).drop(drop).write_csv(path)
    return path


def test_deploy_list_show_and_predict_rows(trained: Trained) -> None:
    d = trained.data_dir
    out = _cli(d, "deploy", trained.v1, "--name", "churn-a", "--reason", "first try").stdout
    assert f"Deployed churn-a: model version 1 ({trained.v1}), revision 1." in out
    assert "URL: POST /api/v1/deployments/churn-a/predict" in out
    listed = _cli(d, "deployments", "list").stdout
    assert re.search(rf"^churn-a +v1 +credit_data → Status +binary +rev 1 .*{trained.v1}", listed)
    shown = _cli(d, "deployments", "show", "churn-a").stdout
    assert "revision 1" in shown and "engine serving" in shown
    assert re.search(rf"^ +1 +\S+ +create +{trained.v1}  — first try$", shown, re.MULTILINE)

    # The example row the deploy command printed is scored as it stands.
    text = _cli(d, "predict", "churn-a", "--row", _example_row(out)).stdout
    assert text.startswith(f"churn-a (revision 1, model version {trained.v1})")
    assert ROW.search(text), text
    probabilities = PROBABILITIES.search(text)
    assert probabilities is not None, text
    assert float(probabilities.group(1)) + float(probabilities.group(2)) == pytest.approx(1, 1e-3)
    # Flags and ignored columns; a JSON list in --row is several rows; --json is the API's
    # answer.
    odd = json.dumps({**json.loads(_example_row(out)), "Home": "castle", "Income": None, "x": 1})
    text = _cli(d, "predict", "churn-a", "--row", odd, "--row", f"[{odd}]").stdout
    assert "Row 2: " in text and "  flags: missing:Income, unseen_category:Home" in text
    assert "Ignored columns the model does not take: x" in text
    answer = json.loads(_cli(d, "predict", "churn-a", "--row", odd, "--json").stdout)
    assert answer["deployment"] == "churn-a" and answer["model_version_id"] == trained.v1
    assert answer["predictions"][0]["flags"] == ["missing:Income", "unseen_category:Home"]
    assert set(answer["predictions"][0]["probabilities"]) == {"bad", "good"}
    assert answer["extra_columns"] == ["x"]


def test_installed_script_predicts_and_logs_before_it_exits(
    trained: Trained, tmp_path: Path
) -> None:
    d = _own_copy(trained, tmp_path)
    row = _example_row(_cli(d, "deploy", trained.v1, "--name", "logged").stdout)
    text = _narrate(d, "predict", "logged", "--row", row, "--row", row).stdout
    assert len(ROW.findall(text)) == 1 and "Row 2: " in text
    from narrate.services.prediction_log import read_predictions

    container = build_container(load_settings(data_dir=d), with_executor=False)
    try:
        deployment_id = _deployment_id(container, "logged")
        logged = read_predictions(
            container.db, container.blobs, deployment_id, since=None, limit=10
        )
    finally:
        container.close()
    assert [(r["caller"], r["arm"]) for r in logged] == [("admin", "primary")] * 2
    assert logged[0]["inputs"] == json.loads(row)


def _example_row(deploy_output: str) -> str:
    found = re.search(r"^Try it: narrate predict \S+ --row '(.+)'$", deploy_output, re.M)
    assert found is not None, deploy_output
    return found.group(1)


def _own_copy(trained: Trained, tmp_path: Path) -> Path:
    """A copy of the data dir that no connection of this process has open, for the
    installed script. Opening a Database on a file closes a descriptor of it, which drops
    every SQLite lock this process holds there (POSIX locks are per process); a
    subprocess that then closes its connection believes it is the last one and removes
    the write-ahead log under this process's open connections."""
    copy = tmp_path / "data"
    shutil.copytree(trained.data_dir, copy, ignore=shutil.ignore_patterns("*-shm"))
    return copy


def _deployment_id(container: Container, name: str) -> str:
    from narrate.services.deployments import get_deployment

    admin = users.find_user(container.db, None)
    return str(get_deployment(container, Owner(admin.id, True), name)["deployment_id"])


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_predict_a_file_writes_scored_rows(trained: Trained, tmp_path: Path, suffix: str) -> None:
    d = trained.data_dir
    _cli(d, "deploy", trained.v1, "--name", f"score-{suffix}")
    source = _new_rows(tmp_path, 300)
    out = tmp_path / f"scored.{suffix}"
    text = _cli(d, "predict", f"score-{suffix}", "--file", str(source), "--out", str(out))
    assert re.search(r"^Scored 300 rows in \d+\.\d\d s \([\d,]+ rows/s\)\.$", text.stdout, re.M)
    assert f"Wrote {out}" in text.stdout
    scored = pl.read_parquet(out) if suffix == "parquet" else pl.read_csv(out)
    assert scored.height == 300
    assert set(scored["prediction"].unique()) <= {"bad", "good"}
    assert scored["Seniority"].cast(pl.Int64).to_list()[:3] == [9, 17, 10]
    total = scored["probability_bad"] + scored["probability_good"]
    assert ((total - 1).abs() < 1e-6).all()
    # An existing output is kept unless --overwrite says otherwise.
    again = _cli(
        d, "predict", f"score-{suffix}", "--file", str(source), "--out", str(out), check=False
    )
    assert again.exit_code == 2 and "already exists. Pass --overwrite" in again.stderr
    assert not list(tmp_path.glob(".scored*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"Seniority": 9, "Home": "rent"', "--row is not valid JSON: Expecting ',' delimiter"),
        ('{"Seniority": 9, "Home": "rent"}', "rows[0] has no 'Time'"),
        ("[FULL, 3]", "rows[1] is a number, not an object"),
        ("[FULL, FULL, {}]", "Hint: rows[2] is row 3 of the rows given with --row."),
        ('"41"', "--row is a string, not an object of column values"),
    ],
    ids=["bad-json", "missing-column", "not-an-object", "third-row", "not-a-row"],
)
def test_predict_row_errors_name_the_row_and_column(
    trained: Trained, row: str, message: str
) -> None:
    _cli(trained.data_dir, "deploy", trained.v1, "--name", "row-errors")
    full = json.dumps(pl.read_csv(SAMPLES / "credit_data.csv").drop("Status").row(0, named=True))
    given = row.replace("FULL", full)
    result = _cli(trained.data_dir, "predict", "row-errors", "--row", given, check=False)
    assert result.exit_code == 2
    assert message in result.stderr


def test_predict_file_missing_a_column_names_file_and_column(
    trained: Trained, tmp_path: Path
) -> None:
    d = _own_copy(trained, tmp_path)
    _cli(d, "deploy", trained.v1, "--name", "file-errors")
    source = _new_rows(tmp_path, 20, drop="Age")
    out = tmp_path / "out.parquet"
    args = ["predict", "file-errors", "--file", str(source), "--out", str(out)]
    result = _narrate(d, *args, check=False)
    assert result.returncode == 1
    assert "Error: 'new.csv' has no column 'Age', which the model needs." in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not out.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --row (one or more rows) or --file, not both"),
        (["--row", "{}", "--file", "FILE"], "give --row (one or more rows) or --file, not both"),
        (["--file", "FILE"], "Give --out: where to write the scored rows"),
        (["--file", "FILE", "--out", "x.xlsx"], "--out x.xlsx has the extension '.xlsx'"),
        (["--file", "nowhere.csv", "--out", "x.csv"], "nowhere.csv is not a file."),
        (["--file", "FILE", "--out", "x.csv", "--json"], "--json applies to --row"),
    ],
    ids=["nothing", "both", "no-out", "bad-extension", "no-file", "json-with-file"],
)
def test_predict_checks_its_options_before_any_work(
    trained: Trained, tmp_path: Path, args: list[str], message: str
) -> None:
    source = str(_new_rows(tmp_path, 5))
    given = [source if a == "FILE" else a for a in args]
    result = _cli(trained.data_dir, "predict", "any", *given, check=False)
    assert result.exit_code == 2
    assert message in result.stderr


def test_unknown_deployment_is_a_clear_error(trained: Trained) -> None:
    result = _cli(trained.data_dir, "predict", "nope", "--row", "{}", check=False)
    assert result.exit_code == 2
    assert "Error: No deployment with id 'nope'." in result.stderr


def test_second_version_rollback_undeploy_and_restore(trained: Trained) -> None:
    d = trained.data_dir
    _cli(d, "deploy", trained.v1, "--name", "churn-b")
    updated = _cli(d, "deploy", trained.v2, "--name", "churn-b", "--reason", "refit").stdout
    assert f"Updated churn-b: now serves model version 2 ({trained.v2}), revision 2" in updated

    # Without --yes it asks, and "no" changes nothing.
    refused = _cli(d, "deployments", "rollback", "churn-b", check=False, stdin="n\n")
    assert refused.exit_code == 1
    assert f"Roll churn-b back from {trained.v2} (revision 2) to {trained.v1}" in refused.stdout
    rolled = _cli(
        d, "deployments", "rollback", "churn-b", "--yes", "--reason", "v2 is worse"
    ).stdout
    assert f"Rolled back churn-b: now serves model version 1 ({trained.v1}), revision 3." in rolled
    shown = _cli(d, "deployments", "show", "churn-b").stdout
    revisions = [line.split() for line in shown.splitlines() if re.match(r"^ +\d+ +20", line)]
    assert [(r[0], r[2], r[3]) for r in revisions] == [
        ("3", "rollback", trained.v1),
        ("2", "update", trained.v2),
        ("1", "create", trained.v1),
    ]
    assert "v2 is worse" in shown

    assert "Undeployed churn-b" in _cli(d, "deployments", "undeploy", "churn-b").stdout
    gone = _cli(d, "predict", "churn-b", "--row", "{}", check=False)
    assert gone.exit_code == 2 and "Deployment 'churn-b' is deleted." in gone.stderr
    assert "narrate deployments restore churn-b" in gone.stderr
    restored = _cli(d, "deployments", "restore", "churn-b").stdout
    assert f"Restored churn-b: serves model version 1 ({trained.v1}), revision 3." in restored
