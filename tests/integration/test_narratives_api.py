"""Grounded narratives over real HTTP: the recipe impact of an applied recipe, the data
narrative's facts in the profile, and the model narrative's facts on the model version and
its evaluations. Every number of each text must be among its facts."""

from __future__ import annotations

from typing import Any

import httpx
from tests.support.api import train_lightgbm, upload_sample, wait_job

from narrate.core.narrative.grounding import ungrounded_numbers

RECIPE = {
    "steps": [
        {"step": "drop_missing", "columns": ["Income"], "how": "any"},
        {"step": "impute", "columns": ["Assets"], "strategy": "median"},
        {"step": "drop_columns", "columns": ["Records"]},
        {"step": "encode", "columns": ["Home"], "method": "one_hot"},
    ]
}


def _grounded(narrative: dict[str, Any]) -> dict[str, Any]:
    assert set(narrative) == {"text", "facts"}
    assert narrative["facts"], narrative
    assert ungrounded_numbers(narrative["text"], narrative["facts"]) == [], narrative["text"]
    return {f["name"]: f["value"] for f in narrative["facts"]}


def _apply(client: httpx.Client, dataset_id: str, **extra: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/datasets/{dataset_id}/recipes/apply", json={**RECIPE, **extra})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return dict(job["result"])


def test_applying_a_recipe_stores_and_returns_its_impact(client: httpx.Client) -> None:
    credit = upload_sample(client, "credit_data.csv", "Status")
    parent = client.get(f"/api/v1/versions/{credit['version_id']}").json()
    assert parent["recipe_impact"] is None
    profile = client.get(f"/api/v1/versions/{credit['version_id']}/profile").json()
    missing_income = profile["columns"]["Income"]["missing"]

    result = _apply(client, credit["id"])
    facts = _grounded(result["recipe_impact"])
    version = client.get(f"/api/v1/versions/{result['version_id']}").json()
    assert version["recipe_impact"] == result["recipe_impact"]
    assert facts["rows removed"] == missing_income == parent["n_rows"] - version["n_rows"]
    text = version["recipe_impact"]["text"]
    assert f"Removed {missing_income:,} rows (" in text
    assert "by dropping rows with empty 'Income'" in text
    assert "'Assets' is now median-filled (" in text
    assert "'Records'" in text and "'Home'" in text

    # the same recipe on the same parent reuses the version and its impact
    again = _apply(client, credit["id"], version_id=credit["version_id"])
    assert again["reused"] is True and again["recipe_impact"] == result["recipe_impact"]
    listed = client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]
    child = next(v for v in listed if v["id"] == result["version_id"])
    assert child["source"]["recipe_impact"] == result["recipe_impact"]


def test_unknown_version_is_404_naming_it(client: httpx.Client) -> None:
    r = client.get("/api/v1/versions/nosuchversion")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_profile_carries_the_data_narratives_facts(client: httpx.Client) -> None:
    credit = upload_sample(client, "credit_data.csv", "Status")
    profile = client.get(f"/api/v1/versions/{credit['version_id']}/profile").json()
    facts = _grounded({"text": profile["narrative"], "facts": profile["narrative_facts"]})
    assert facts["rows"] == 4454 and facts["target"] == "Status"


def test_model_version_and_evaluations_return_narrative_facts(client: httpx.Client) -> None:
    credit = upload_sample(client, "credit_data.csv", "Status")
    model_id, mv_id = train_lightgbm(client, credit["version_id"], "Status")
    mv = client.get(f"/api/v1/model-versions/{mv_id}").json()
    facts = _grounded({"text": mv["narrative"], "facts": mv["narrative_facts"]})
    assert facts["roc_auc"] == round(mv["metrics"]["roc_auc"]["value"], 2)
    assert "ROC AUC — how well the model ranks" in mv["narrative"]
    holdout = mv["evaluation"]
    assert holdout["narrative_facts"] == mv["narrative_facts"]
    current = client.get(f"/api/v1/models/{model_id}/evaluation").json()
    assert current["narrative_facts"] == mv["narrative_facts"]

    r = client.post(
        f"/api/v1/models/{model_id}/evaluations", json={"version_id": credit["version_id"]}
    )
    assert r.status_code == 201, r.text
    external = r.json()
    _grounded({"text": external["narrative"], "facts": external["narrative_facts"]})
    stored = client.get(f"/api/v1/evaluations/{external['id']}").json()
    assert stored["narrative_facts"] == external["narrative_facts"]
