"""`narrate explain` on a real data dir holding a small LightGBM model of credit_data.

The model is trained through the services in this process; the command runs through the
real Typer app in this process (as tests/e2e/test_cli_deploy.py does), and once as the
installed `narrate` script.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.conftest import SAMPLES
from typer.testing import CliRunner, Result

from narrate.bootstrap import build_container
from narrate.cli import app
from narrate.config import load_settings
from narrate.jobs.executors import InlineExecutor
from narrate.services import datasets, deployments, models, training, users
from narrate.services.datasets import Owner

pytestmark = pytest.mark.e2e

LINE = re.compile(r"^  ([+-]) +(\d+\.\d{4}) +(-?\d+\.\d{4})  (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Trained:
    data_dir: Path
    mv_id: str
    row: dict[str, Any]


def _cli(data_dir: Path, *args: str, check: bool = True) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(data_dir)
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if check and result.exit_code != 0:
        raise AssertionError(f"narrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    data_dir = tmp_path_factory.mktemp("explain") / "data"
    settings = load_settings(data_dir=data_dir, load_samples=False, job_warmup=False)
    container = build_container(settings, with_executor=False)
    container.executor = InlineExecutor(settings)
    try:
        container.db.upgrade()
        admin = users.create_user(container.db, "admin", "maple-anchor-123", "admin")
        users.create_user(container.db, "bob", "birch-harbour-456", "analyst")
        owner = Owner(admin.id, True)
        dataset = datasets.ingest_file(
            container,
            admin.id,
            SAMPLES / "credit_data.csv",
            filename="credit_data.csv",
            target="Status",
        )
        options = {
            "time_budget_s": 15,
            "max_trials": 2,
            "families": ["lightgbm"],
            "ensembles": False,
        }
        model_id = training.start_training(container, owner, dataset["id"], options)["model_id"]
        mv_id = str(models.get_model(container, owner, model_id)["current_version_id"])
        deployments.create_deployment(
            container, owner, name="credit-x", model_version_id=mv_id, description="", reason=""
        )
    finally:
        container.close()
    first = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=["Status"]).iloc[0]
    row = {
        k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in first.items()
    }
    return Trained(data_dir, mv_id, row)


def test_explain_prints_prediction_sentence_and_a_sorted_waterfall(trained: Trained) -> None:
    row = json.dumps(trained.row)
    text = _cli(trained.data_dir, "explain", trained.mv_id, "--row", row).stdout
    body = json.loads(
        _cli(trained.data_dir, "explain", trained.mv_id, "--row", row, "--json").stdout
    )
    [e] = body["explanations"]
    assert text.startswith(f"Model version {trained.mv_id}; method native\n")
    assert f"Row 1: {e['prediction']}\n" in text
    assert f"  {e['narrative']['text']}\n" in text
    assert f"Contributions to the log-odds of '{e['explained_class']}'" in text
    lines = LINE.findall(text)
    assert [column for *_, column in lines] == sorted(
        e["contributions"], key=lambda c: (-abs(e["contributions"][c]), c)
    )
    for sign, size, _, column in lines:
        value = e["contributions"][column]
        assert sign == ("-" if value < 0 else "+")
        assert float(size) == pytest.approx(abs(value), abs=5e-5)
    # The running total walks from the base value to the output.
    assert re.search(rf"^ +base +{e['base_value']:.4f}$", text, re.MULTILINE)
    assert re.search(rf"^ +output +{e['output']:.4f}$", text, re.MULTILINE)
    assert float(lines[-1][2]) == pytest.approx(e["output"], abs=1e-3)


def test_explain_json_is_additive_and_several_rows_come_back_in_order(trained: Trained) -> None:
    second = {**trained.row, "Income": 20.0, "Records": "yes"}
    out = _cli(
        trained.data_dir,
        "explain",
        trained.mv_id,
        "--row",
        json.dumps(trained.row),
        "--row",
        json.dumps(second),
        "--json",
    ).stdout
    body = json.loads(out)
    assert body["model_version_id"] == trained.mv_id and len(body["explanations"]) == 2
    for e in body["explanations"]:
        total = e["base_value"] + sum(e["contributions"].values())
        assert total == pytest.approx(e["output"], rel=1e-6, abs=1e-9)
    a, b = body["explanations"]
    assert a["contributions"]["Income"] != b["contributions"]["Income"]


def test_explain_with_a_deployment_uses_the_version_it_serves(trained: Trained) -> None:
    row = json.dumps(trained.row)
    text = _cli(trained.data_dir, "explain", "--deployment", "credit-x", "--row", row).stdout
    assert text.startswith(f"credit-x (revision 1, model version {trained.mv_id}); method native")
    direct = json.loads(
        _cli(trained.data_dir, "explain", trained.mv_id, "--row", row, "--json").stdout
    )
    by_name = json.loads(
        _cli(trained.data_dir, "explain", "--deployment", "credit-x", "--row", row, "--json").stdout
    )
    assert by_name["explanations"] == direct["explanations"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--row", "{}"], "Give a MODEL_VERSION_ID or --deployment NAME"),
        (["MV", "--deployment", "credit-x", "--row", "{}"], "Give a MODEL_VERSION_ID or"),
        (["MV"], "Give the row to explain with --row"),
        (["MV", "--row", "{not json"], "--row is not valid JSON"),
        (["MV", "--row", "[1]"], "rows[0] is a number, not an object"),
        (["MV", "--row", '{"Age": 30}'], "rows[0] has no 'Seniority'"),
        (["MV", "--row", "ROW_WITH_BAD_INCOME"], "Income"),
        (["no-such-version", "--row", "{}"], "No model version with id 'no-such-version'"),
        (["--deployment", "nope", "--row", "{}"], "nope"),
    ],
    ids=[
        "no-target",
        "both-targets",
        "no-row",
        "bad-json",
        "not-an-object",
        "missing-column",
        "bad-value",
        "unknown-version",
        "unknown-deployment",
    ],
)
def test_explain_errors_are_messages_not_tracebacks(
    trained: Trained, args: list[str], message: str
) -> None:
    bad_income = json.dumps({**trained.row, "Income": "lots"})
    args = [
        trained.mv_id if a == "MV" else bad_income if a == "ROW_WITH_BAD_INCOME" else a
        for a in args
    ]
    result = _cli(trained.data_dir, "explain", *args, check=False)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert result.stderr.startswith("Error: ")


def test_another_user_cannot_explain_with_the_admins_model(trained: Trained) -> None:
    result = _cli(
        trained.data_dir,
        "explain",
        trained.mv_id,
        "--row",
        json.dumps(trained.row),
        "--as",
        "bob",
        check=False,
    )
    assert result.exit_code == 2 and f"No model version with id '{trained.mv_id}'" in result.stderr


def test_the_installed_script_explains_a_row(trained: Trained) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(trained.data_dir)
    exe = str(Path(sys.executable).parent / "narrate")
    done = subprocess.run(
        [exe, "explain", trained.mv_id, "--row", json.dumps(trained.row)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Row 1: " in done.stdout and len(LINE.findall(done.stdout)) == len(trained.row)
