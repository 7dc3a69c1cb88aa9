"""The `narrate` CLI as a subprocess on a real data dir: the whole workflow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import SAMPLES

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
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    _narrate(d, "db", "upgrade")
    _narrate(
        d,
        "users",
        "create",
        "--username",
        "admin",
        "--password",
        "maple-anchor-123",
        "--role",
        "admin",
    )
    return d


def test_every_command_has_useful_help() -> None:
    for args in (
        ["--help"],
        ["datasets", "--help"],
        ["recipes", "apply", "--help"],
        ["versions", "--help"],
        ["train", "--help"],
        ["models", "--help"],
        ["serve", "--help"],
    ):
        out = _narrate(Path("/nonexistent"), *args).stdout
        assert "Usage" in out and len(out.splitlines()) > 5, args


def test_users_list_and_bad_role(data_dir: Path) -> None:
    assert "admin" in _narrate(data_dir, "users", "list").stdout
    bad = _narrate(
        data_dir,
        "users",
        "create",
        "--username",
        "x1y",
        "--password",
        "maple-anchor-17",
        "--role",
        "boss",
        check=False,
    )
    assert bad.returncode == 2 and "Role 'boss' does not exist" in bad.stderr


def test_upload_transform_train_from_the_cli(data_dir: Path, tmp_path: Path) -> None:
    out = _narrate(
        data_dir, "datasets", "add", str(SAMPLES / "credit_data.csv"), "--target", "Status"
    ).stdout
    dataset_id = re.search(r"\(([0-9a-f]{32})\)", out).group(1)  # type: ignore[union-attr]
    assert "4,454 rows" in out
    assert "credit_data" in _narrate(data_dir, "datasets", "list").stdout
    assert "Income" in _narrate(data_dir, "datasets", "show", dataset_id).stdout
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "steps:\n  - step: impute\n    columns: [Income, Assets]\n    strategy: median\n"
    )
    applied = _narrate(data_dir, "recipes", "apply", dataset_id, str(recipe)).stdout
    assert "New version" in applied
    versions = _narrate(data_dir, "versions", "list", dataset_id).stdout.splitlines()
    assert len(versions) == 2 and "impute" in versions[1]
    new_version = versions[1].split()[1]
    assert "matches" in _narrate(data_dir, "versions", "reproduce", new_version).stdout
    trained = _narrate(
        data_dir,
        "train",
        dataset_id,
        "--budget",
        "20",
        "--max-trials",
        "3",
        "--family",
        "baseline",
        "--family",
        "linear",
    ).stdout
    assert "ROC AUC" in trained
    assert "Leaderboard (roc_auc, cross-validated)" in trained
    assert re.search(r"│ +1 │ (linear|baseline) +│ +0\.\d{4} │", trained), trained
    mv = re.search(r"Model version ([0-9a-f]{32})", trained).group(1)  # type: ignore[union-attr]
    card = tmp_path / "card.md"
    _narrate(data_dir, "models", "card", mv, "--output", str(card), "--format", "md")
    assert card.read_text().startswith("#")
    assert "binary" in _narrate(data_dir, "models", "list").stdout
    served = tmp_path / "model.serving"
    wrote = _narrate(data_dir, "models", "download", mv, "--output", str(served)).stdout
    assert "serving" in wrote and served.stat().st_size > 0
    # The served model runs the impute recipe on raw rows (missing incomes included).
    csv = str(SAMPLES / "credit_data.csv")
    code = (
        "import sys, pandas as pd; from narrate.core.serving import load_serving; "
        f"m = load_serving({str(served)!r}); rows = pd.read_csv({csv!r}); "
        "rows = rows[rows['Income'].isna()].head(5).drop(columns=['Status']); "
        "print(len(rows), sorted(set(m.predict(rows))), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, rest = out.stdout.split(" ", 1)
    assert int(count) == 5 and rest.strip().endswith("False"), out.stdout
    assert set(re.findall(r"'(\w+)'", rest)) <= {"good", "bad"}


def test_bad_file_exits_2_with_the_reason(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "ragged.csv"
    bad.write_text("a,b,c\n1,2,3\n4,5\n")
    r = _narrate(data_dir, "datasets", "add", str(bad), check=False)
    assert r.returncode == 2 and "line 3" in r.stderr


def test_bad_recipe_lists_issues(data_dir: Path, tmp_path: Path) -> None:
    out = _narrate(data_dir, "datasets", "add", str(SAMPLES / "penguins.csv")).stdout
    dataset_id = re.search(r"\(([0-9a-f]{32})\)", out).group(1)  # type: ignore[union-attr]
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"steps": [{"step": "scale", "columns": ["ghost"]}]}))
    r = _narrate(data_dir, "recipes", "apply", dataset_id, str(recipe), check=False)
    assert r.returncode == 2 and "ghost" in r.stderr


def test_datasets_add_and_show_mask_personal_data(data_dir: Path, tmp_path: Path) -> None:
    rows = ["helpdesk.team@example.org"] * 59 + ["a.b@example.org"]
    csv = tmp_path / "contacts.csv"
    csv.write_text("support,amount\n" + "".join(f"{e},{i}\n" for i, e in enumerate(rows)))
    added = _narrate(data_dir, "datasets", "add", str(csv), "--as", "admin")
    dataset_id = re.search(r"\(([0-9a-f-]{8,})\)", added.stdout)
    assert dataset_id, added.stdout
    shown = _narrate(data_dir, "datasets", "show", dataset_id.group(1), "--as", "admin")
    for out in (added.stdout, shown.stdout):
        assert "helpdesk.team@example.org" not in out, out
    assert "support" in shown.stdout
