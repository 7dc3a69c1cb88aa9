"""Train → Evaluate over real HTTP with a short budget on a real dataset."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import SAMPLES

from narrate.bootstrap import Container

FAST = {
    "time_budget_s": 20,
    "max_trials": 4,
    "families": ["baseline", "linear", "lightgbm"],
    "n_jobs": 1,
    "ensembles": False,
}


def _upload(client: httpx.Client, name: str, target: str) -> dict[str, Any]:
    r = client.post(
        "/api/v1/datasets",
        files={"file": (name, (SAMPLES / name).read_bytes())},
        data={"target": target},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _wait_model(client: httpx.Client, model_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = client.get(f"/api/v1/models/{model_id}").json()
        if m["training"] and m["training"]["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(m)
        time.sleep(0.5)
    raise AssertionError("training did not finish")


@pytest.fixture
def trained(client: httpx.Client) -> dict[str, Any]:
    d = _upload(client, "credit_data.csv", "Status")
    r = client.post("/api/v1/models", json={"dataset_id": d["id"], **FAST})
    assert r.status_code == 202, r.text
    assert r.json()["task"] == "binary"
    m = _wait_model(client, r.json()["model_id"])
    assert m["training"]["status"] == "succeeded", m["training"]
    return {"dataset": d, "model": m}


def test_training_produces_a_registered_evaluated_model(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    m = trained["model"]
    assert m["status"] == "ready" and len(m["versions"]) == 1
    mv = client.get(f"/api/v1/model-versions/{m['current_version_id']}").json()
    assert mv["leaderboard"] and mv["leaderboard"][0]["rank"] == 1
    assert {"sklearn", "lightgbm"} <= {
        k.lower().replace("scikit-learn", "sklearn") for k in mv["library_versions"]
    }
    ev = mv["evaluation"]
    auc = ev["metrics"]["roc_auc"]
    assert 0.7 < auc["value"] <= 1 and auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    assert ev["confusion_matrix"] and ev["curves"]["roc"]
    assert "Status" in mv["narrative"] and "ROC AUC" in mv["narrative"]
    assert m["training"]["leaderboard"], "the live leaderboard was reported through the job"
    graph = client.get(f"/api/v1/versions/{trained['dataset']['version_id']}/lineage").json()
    model_nodes = [n for n in graph["nodes"] if n["type"] == "model"]
    assert [n["id"] for n in model_nodes] == [m["current_version_id"]]
    assert {
        "from": trained["dataset"]["version_id"],
        "to": m["current_version_id"],
        "type": "trained",
        "steps": [],
    } in graph["edges"]


def test_model_card_downloads_as_html_and_markdown(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    mv_id = trained["model"]["current_version_id"]
    html = client.get(f"/api/v1/model-versions/{mv_id}/card", params={"format": "html"})
    assert html.status_code == 200
    assert "<html" in html.text.lower()
    assert '<script src="http' not in html.text
    md = client.get(f"/api/v1/model-versions/{mv_id}/card", params={"format": "md"})
    assert md.status_code == 200 and md.text.startswith("#")
    assert "loads without scikit-learn" in md.text  # the serving copy is on record


def test_evaluate_on_another_labelled_version(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    d = trained["dataset"]
    r = client.post(
        f"/api/v1/models/{trained['model']['id']}/evaluations", json={"version_id": d["version_id"]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "external" and r.json()["n_rows"] == 4454
    stored = client.get(f"/api/v1/evaluations/{r.json()['id']}")
    assert stored.status_code == 200 and stored.json()["metrics"] == r.json()["metrics"]
    assert client.get("/api/v1/evaluations/nope").status_code == 404
    other = _upload(client, "penguins.csv", "species")
    bad = client.post(
        f"/api/v1/models/{trained['model']['id']}/evaluations",
        json={"version_id": other["version_id"]},
    )
    assert bad.status_code == 422 and "Status" in bad.json()["error"]["message"]


def test_refit_creates_a_new_version_without_search(
    client: httpx.Client, trained: dict[str, Any]
) -> None:
    model_id = trained["model"]["id"]
    r = client.post(f"/api/v1/models/{model_id}/refit", json={})
    assert r.status_code == 202
    m = _wait_model(client, model_id)
    assert m["training"]["status"] == "succeeded", m["training"]
    assert [v["number"] for v in m["versions"]] == [1, 2]
    assert m["versions"][1]["parent_version_id"] == m["versions"][0]["id"]
    cmp = client.post(
        "/api/v1/models/compare", json={"model_version_ids": [v["id"] for v in m["versions"]]}
    )
    assert cmp.status_code == 200


def test_saved_model_loads_in_a_fresh_process(
    client: httpx.Client, trained: dict[str, Any], tmp_path: Path
) -> None:
    mv_id = trained["model"]["current_version_id"]
    serving = client.get(f"/api/v1/model-versions/{mv_id}").json()["details"]["serving"]
    assert serving["available"] is True, serving
    paths = {}
    for fmt in ("joblib", "serving"):
        r = client.get(f"/api/v1/model-versions/{mv_id}/artifact", params={"format": fmt})
        assert r.status_code == 200, r.text
        assert f"model-{mv_id}.{fmt}" in r.headers["content-disposition"]
        paths[fmt] = tmp_path / f"model.{fmt}"
        paths[fmt].write_bytes(r.content)
    bad = client.get(f"/api/v1/model-versions/{mv_id}/artifact", params={"format": "pickle"})
    assert bad.status_code == 422
    csv = str(SAMPLES / "credit_data.csv")
    loaders = {
        "joblib": "from narrate.core.automl import load_model as load",
        "serving": "from narrate.core.serving import load_serving as load",
    }
    predictions = {}
    for fmt, loader in loaders.items():
        code = (
            f"import sys, json, pandas as pd; {loader}; "
            f"m = load({str(paths[fmt])!r}); df = pd.read_csv({csv!r}).head(40); "
            "p = m.predict_proba(df.drop(columns=['Status']))[:, 1].round(6).tolist(); "
            "print(json.dumps({'p': p, 'labels': list(map(str, m.predict(df))), "
            "'sklearn': 'sklearn' in sys.modules}))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        predictions[fmt] = json.loads(out.stdout)
    # The serving copy predicts the same, without importing scikit-learn at all.
    assert predictions["serving"]["sklearn"] is False
    assert predictions["joblib"]["sklearn"] is True
    assert predictions["serving"]["labels"] == predictions["joblib"]["labels"]
    assert predictions["serving"]["p"] == pytest.approx(predictions["joblib"]["p"], abs=1e-5)
    assert set(predictions["serving"]["labels"]) <= {"good", "bad"}
    page = client.get("/stages/evaluate", params={"model": trained["model"]["id"]}).text
    assert f"/api/v1/model-versions/{mv_id}/artifact?format=serving" in page


def test_a_version_without_a_serving_copy_says_why(
    client: httpx.Client, container: Container, trained: dict[str, Any]
) -> None:
    from narrate.storage.sql.tables import ModelVersion

    mv_id = trained["model"]["current_version_id"]
    with container.db.session() as s:
        mv = s.get(ModelVersion, mv_id)
        assert mv is not None
        mv.details = {**mv.details, "serving": {"available": False, "reason": "model KNN"}}
    r = client.get(f"/api/v1/model-versions/{mv_id}/artifact", params={"format": "serving"})
    assert r.status_code == 409 and "model KNN" in r.json()["error"]["message"]
    assert client.get(f"/api/v1/model-versions/{mv_id}/artifact?format=joblib").status_code == 200
    page = client.get("/stages/evaluate", params={"model": trained["model"]["id"]}).text
    assert "No serving copy of this version" in page and "model KNN" in page
    assert "artifact?format=serving" not in page


@pytest.mark.parametrize(
    ("target", "status", "words"),
    [("nope", 422, "nope"), ("Seniority", 202, ""), (None, 422, "Choose the column")],
    ids=["unknown-target", "regression-target-accepted", "no-target"],
)
def test_training_request_validation(
    client: httpx.Client, target: str | None, status: int, words: str
) -> None:
    r = client.post(
        "/api/v1/datasets", files={"file": ("h.csv", (SAMPLES / "hitters.csv").read_bytes())}
    )
    d = r.json()
    body: dict[str, Any] = {"dataset_id": d["id"], **FAST, "max_trials": 1}
    if target is not None:
        body["target"] = "Salary" if target == "Seniority" else target
    r = client.post("/api/v1/models", json=body)
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["error"]["message"]
    else:
        _wait_model(client, r.json()["model_id"])


def test_constant_target_is_refused(client: httpx.Client) -> None:
    csv = "a,b,y\n" + "\n".join(f"{i},{i % 3},same" for i in range(50))
    d = client.post("/api/v1/datasets", files={"file": ("c.csv", csv.encode())}).json()
    r = client.post("/api/v1/models", json={"dataset_id": d["id"], "target": "y", **FAST})
    assert r.status_code == 422 and "constant" in r.json()["error"]["message"].lower()
