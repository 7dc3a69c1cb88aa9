"""`narrate recommend` as a subprocess on a real data dir."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import SAMPLES
from tests.support.recommendations import assert_grounded

pytestmark = pytest.mark.e2e


def _narrate(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(data_dir)
    exe = str(Path(sys.executable).parent / "narrate")
    result = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"narrate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def hitters(tmp_path: Path) -> tuple[Path, str]:
    """A data dir with an admin and hitters.csv uploaded (target Salary); its dataset id."""
    d = tmp_path / "data"
    _narrate(d, "db", "upgrade")
    _narrate(
        d, "users", "create", "--username", "admin", "--password", "maple-anchor-123",
        "--role", "admin",
    )  # fmt: skip
    out = _narrate(d, "datasets", "add", str(SAMPLES / "hitters.csv"), "--target", "Salary")
    found = re.search(r"\b([0-9a-f]{32})\b", out.stdout)
    assert found, out.stdout
    return d, found.group(1)


def test_recommend_prints_numbered_items_and_json(hitters: tuple[Path, str]) -> None:
    data_dir, dataset_id = hitters
    text = _narrate(data_dir, "recommend", dataset_id).stdout
    assert text.startswith("1. [info] Train a regression model  (problem_type:Salary)")
    assert "   Action: training options " in text
    body = json.loads(_narrate(data_dir, "recommend", dataset_id, "--json").stdout)
    assert body["target"] == "Salary" and body["dataset_id"] == dataset_id
    for item in body["items"]:
        assert_grounded(item)
    other = json.loads(
        _narrate(data_dir, "recommend", dataset_id, "--target", "League", "--json").stdout
    )
    problem = next(i for i in other["items"] if i["rule"] == "problem_type")
    assert problem["action"]["options"] == {"target": "League", "task": "binary"}


def test_recommend_refuses_an_unknown_target(hitters: tuple[Path, str]) -> None:
    data_dir, dataset_id = hitters
    bad = _narrate(data_dir, "recommend", dataset_id, "--target", "Nope", check=False)
    assert bad.returncode == 2
    assert "There is no column named 'Nope'" in bad.stderr
    assert "Hint: Pick one of:" in bad.stderr


def test_recommend_after_training_a_model(hitters: tuple[Path, str]) -> None:
    data_dir, dataset_id = hitters
    trained = _narrate(
        data_dir, "train", dataset_id, "--budget", "20", "--max-trials", "2",
        "--family", "baseline", "--family", "linear",
    ).stdout  # fmt: skip
    found = re.search(r"Training model ([0-9a-f]{32})", trained)
    assert found, trained
    body = json.loads(
        _narrate(data_dir, "recommend", dataset_id, "--model", found.group(1), "--json").stdout
    )
    small = next(i for i in body["items"] if i["rule"] == "small_dataset")
    assert small["action"]["options"]["cv"] == "kfold"
    wrong = _narrate(data_dir, "recommend", "0" * 32, "--model", found.group(1), check=False)
    assert wrong.returncode == 2 and "was not trained on dataset" in wrong.stderr
