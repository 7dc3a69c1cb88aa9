"""The Transform stage over real HTTP: validate, preview, apply (job), lineage, diff, reproduce."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from tests.conftest import SAMPLES

RECIPE = {
    "steps": [
        {"step": "drop_missing", "columns": ["Income"], "how": "any"},
        {"step": "filter", "expression": "Age >= 20"},
        {"step": "derive", "name": "ratio", "expression": "Amount / (Price + 1)"},
        {"step": "impute", "columns": ["Assets"], "strategy": "median"},
        {"step": "scale", "columns": ["Amount"], "method": "standard"},
        {"step": "encode", "columns": ["Home"], "method": "one_hot"},
    ]
}


@pytest.fixture
def credit(client: httpx.Client) -> dict[str, Any]:
    r = client.post(
        "/api/v1/datasets",
        files={"file": ("credit.csv", (SAMPLES / "credit_data.csv").read_bytes())},
        data={"target": "Status"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return dict(job)
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def _apply(
    client: httpx.Client, dataset_id: str, recipe: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    r = client.post(f"/api/v1/datasets/{dataset_id}/recipes/apply", json={**recipe, **extra})
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    return job


def test_step_catalog_lists_every_step_with_a_schema(client: httpx.Client) -> None:
    items = client.get("/api/v1/recipes/steps").json()["items"]
    names = {i["name"] for i in items}
    assert {"impute", "filter", "derive", "encode", "scale", "drop_missing", "pii", "sort"} <= names
    assert all(i["json_schema"]["type"] == "object" and i["description"] for i in items)


@pytest.mark.parametrize(
    ("steps", "words", "step_index"),
    [
        ([{"step": "scale", "columns": ["nope"], "method": "standard"}], "nope", 0),
        ([{"step": "scale", "columns": ["Home"], "method": "standard"}], "Home", 0),
        ([{"step": "filter", "expression": "Age >>= 3"}], "Age >>= 3", 0),
        (
            [{"step": "drop_columns", "columns": ["Age"]}, {"step": "impute", "columns": ["Age"]}],
            "Age",
            1,
        ),
    ],
    ids=["unknown-column", "scale-text-column", "bad-expression", "uses-dropped-column"],
)
def test_validation_names_step_and_column(
    client: httpx.Client,
    credit: dict[str, Any],
    steps: list[dict[str, Any]],
    words: str,
    step_index: int,
) -> None:
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": steps})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    issue = body["issues"][0]
    assert issue["step_index"] == step_index
    assert words in issue["message"]


def test_unknown_step_type_is_422_listing_valid_steps(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": [{"step": "teleport"}]}
    )
    assert r.status_code == 422
    assert "impute" in r.json()["error"]["message"]


def test_preview_shows_before_and_after(client: httpx.Client, credit: dict[str, Any]) -> None:
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/preview", json=RECIPE)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["rows"]["before"] == 4454 and 0 < p["rows"]["after"] < 4454
    assert "ratio" in p["columns"]["added"] and "Home" in p["columns"]["removed"]
    assert p["sample"]["changed_cells"]


def test_invalid_recipe_preview_is_422_with_issues(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/preview",
        json={"steps": [{"step": "impute", "columns": ["ghost"], "strategy": "mean"}]},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["issues"][0]["column"] == "ghost"


def test_apply_creates_a_version_with_lineage_and_same_recipe_reuses_it(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    job = _apply(client, credit["id"], RECIPE)
    vid = job["result"]["version_id"]
    assert vid != credit["version_id"]
    version = client.get(f"/api/v1/versions/{vid}").json()
    assert version["parent_version_id"] == credit["version_id"]
    assert version["recipe"]["steps"][0]["step"] == "drop_missing"
    assert client.get(f"/api/v1/datasets/{credit['id']}").json()["version_id"] == vid
    again = _apply(client, credit["id"], RECIPE, version_id=credit["version_id"])
    assert again["result"]["version_id"] == vid and again["result"]["reused"] is True
    graph = client.get(f"/api/v1/versions/{vid}/lineage").json()
    assert {n["id"] for n in graph["nodes"]} == {credit["version_id"], vid}
    assert graph["edges"] == [
        {
            "from": credit["version_id"],
            "to": vid,
            "type": "recipe",
            "steps": [s["step"] for s in RECIPE["steps"]],
        }
    ]


def test_data_loss_needs_confirmation_and_creates_nothing_without_it(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    lossy = {"steps": [{"step": "filter", "expression": "Age > 60"}]}
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/apply", json=lossy)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "confirm_data_loss"
    assert len(client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]) == 1
    job = _apply(client, credit["id"], lossy, confirm_data_loss=True)
    assert client.get(f"/api/v1/versions/{job['result']['version_id']}").json()["n_rows"] < 2000


def test_dropping_the_target_needs_confirmation(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/apply",
        json={"steps": [{"step": "drop_columns", "columns": ["Status"]}]},
    )
    assert r.status_code == 409 and "target" in r.json()["error"]["message"]
    job = _apply(
        client,
        credit["id"],
        {"steps": [{"step": "drop_columns", "columns": ["Status"]}]},
        confirm_data_loss=True,
    )
    version = client.get(f"/api/v1/versions/{job['result']['version_id']}").json()
    assert "Status" not in [c["name"] for c in version["columns"]]
    assert client.get(f"/api/v1/datasets/{credit['id']}").json()["target"] == "Status"
    # the next recipe on that version works without the target column
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/preview",
        json={"steps": [{"step": "scale", "columns": ["Age"]}]},
    )
    assert r.status_code == 200, r.text


def test_empty_result_is_refused(client: httpx.Client, credit: dict[str, Any]) -> None:
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/apply",
        json={"steps": [{"step": "filter", "expression": "Age > 1000"}], "confirm_data_loss": True},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_result"


def test_compare_reproduce_and_restore(client: httpx.Client, credit: dict[str, Any]) -> None:
    vid = _apply(client, credit["id"], RECIPE)["result"]["version_id"]
    diff = client.post(
        "/api/v1/versions/compare", json={"a": credit["version_id"], "b": vid}
    ).json()["diff"]
    assert "ratio" in str(diff) and "Home" in str(diff)
    rep = client.post(f"/api/v1/versions/{vid}/reproduce").json()
    assert rep["matches"] is True, rep
    assert rep["reproduced_hash"] == rep["expected_hash"]
    restored = client.post(f"/api/v1/versions/{credit['version_id']}/restore")
    assert restored.status_code == 200
    assert (
        client.get(f"/api/v1/datasets/{credit['id']}").json()["version_id"] == credit["version_id"]
    )
    assert len(client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]) == 2


def test_recipe_can_be_sent_as_yaml_text_through_the_cli_service(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    from narrate.services.recipes import parse_recipe

    parsed = parse_recipe("steps:\n  - step: impute\n    columns: [Assets]\n    strategy: median\n")
    assert parsed.steps[0].step == "impute"  # type: ignore[union-attr]


@pytest.fixture
def credit_no_target(client: httpx.Client) -> dict[str, Any]:
    r = client.post(
        "/api/v1/datasets",
        files={"file": ("credit.csv", (SAMPLES / "credit_data.csv").read_bytes())},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _issue(client: httpx.Client, dataset_id: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    r = client.post(f"/api/v1/datasets/{dataset_id}/recipes/validate", json={"steps": steps})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["valid"] is False
    return dict(body["issues"][0])


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (
            [{"step": "scale", "columns": ["nope"], "method": "standard"}],
            {"step_index": 0, "step": "scale", "parameter": "columns", "column": "nope"},
        ),
        (
            [{"step": "drop_columns", "columns": ["Age"]}, {"step": "impute", "columns": ["Age"]}],
            {"step_index": 1, "step": "impute", "parameter": "columns", "column": "Age"},
        ),
        (
            [{"step": "filter", "expression": "Age + 1"}],
            {"step_index": 0, "step": "filter", "parameter": "expression", "column": None},
        ),
        (
            [
                {"step": "impute", "columns": ["Age"]},
                {"step": "derive", "name": "x", "expression": "Age >>"},
            ],
            {"step_index": 1, "step": "derive", "parameter": "expression", "column": None},
        ),
        (
            [{"step": "encode", "columns": ["Home"], "method": "target", "target": "Home"}],
            {"step_index": 0, "step": "encode", "parameter": "columns", "column": "Home"},
        ),
    ],
    ids=[
        "unknown-column",
        "column-removed",
        "not-a-condition",
        "bad-expression",
        "target-in-columns",
    ],
)
def test_validation_issue_locates_step_parameter_and_column(
    client: httpx.Client,
    credit: dict[str, Any],
    steps: list[dict[str, Any]],
    expected: dict[str, Any],
) -> None:
    issue = _issue(client, credit["id"], steps)
    assert {k: issue[k] for k in expected} == expected
    assert f"step {expected['step_index'] + 1} " in issue["message"].lower()


def test_filter_that_is_not_a_condition_says_so(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    issue = _issue(client, credit["id"], [{"step": "filter", "expression": "Age + 1"}])
    assert issue["code"] == "not_a_condition"
    assert "Age + 1" in issue["message"] and "true/false" in issue["message"]


def test_target_encoding_without_a_target_is_reported(
    client: httpx.Client, credit_no_target: dict[str, Any]
) -> None:
    steps = [{"step": "encode", "columns": ["Home"], "method": "target"}]
    issue = _issue(client, credit_no_target["id"], steps)
    assert issue["code"] == "missing_target"
    assert (issue["step_index"], issue["step"], issue["parameter"], issue["column"]) == (
        0,
        "encode",
        "target",
        None,
    )
    assert "target" in issue["message"]
    r = client.post(
        f"/api/v1/datasets/{credit_no_target['id']}/recipes/preview", json={"steps": steps}
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"]["issues"][0]["code"] == "missing_target"


@pytest.mark.parametrize(
    ("step", "parameter"),
    [
        ({"step": "scale", "columns": ["Age"], "method": "cubic"}, "method"),
        ({"step": "bin", "columns": ["Age"], "n_bins": 1}, "n_bins"),
        ({"step": "impute", "columns": ["Age"], "strategy": "constant"}, None),
        ({"step": "encode", "columns": ["Home"], "colour": "red"}, "colour"),
    ],
    ids=["bad-choice", "out-of-range", "missing-dependent-value", "unknown-parameter"],
)
def test_bad_parameters_are_422_invalid_parameter_naming_step_and_parameter(
    client: httpx.Client, credit: dict[str, Any], step: dict[str, Any], parameter: str | None
) -> None:
    steps = [{"step": "drop_columns", "columns": ["Job"]}, step]
    r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": steps})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_recipe"
    issue = error["details"]["issues"][0]
    assert issue["code"] == "invalid_parameter"
    assert (issue["step_index"], issue["step"], issue["parameter"]) == (1, step["step"], parameter)
    assert issue["column"] is None
    assert "step 2" in error["message"]


def test_constant_fill_value_of_the_wrong_type_names_value_and_column(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    steps = [{"step": "impute", "columns": ["Age"], "strategy": "constant", "value": "old"}]
    issue = _issue(client, credit["id"], steps)
    assert (issue["code"], issue["parameter"], issue["column"]) == ("wrong_type", "value", "Age")


YAML_RECIPE = """\
# the same recipe as RECIPE, written by hand
steps:
  - step: drop_missing
    columns: [Income]
  - {step: filter, expression: "Age >= 20"}
  - step: derive
    name: ratio
    expression: Amount / (Price + 1)
  - step: impute
    columns: [Assets]
    strategy: median
  - step: scale
    columns: [Amount]
    method: standard
  - step: encode
    columns: [Home]
    method: one_hot
"""


@pytest.mark.parametrize("media", ["application/yaml", "text/yaml", "application/x-yaml"])
def test_yaml_recipe_validates_and_previews_like_json(
    client: httpx.Client, credit: dict[str, Any], media: str
) -> None:
    url = f"/api/v1/datasets/{credit['id']}/recipes"
    headers = {"Content-Type": f"{media}; charset=utf-8"}
    checked = client.post(f"{url}/validate", content=YAML_RECIPE, headers=headers)
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    assert checked.json()["recipe"] == {
        "steps": [
            {"step": "drop_missing", "columns": ["Income"]},
            {"step": "filter", "expression": "Age >= 20"},
            {"step": "derive", "name": "ratio", "expression": "Amount / (Price + 1)"},
            {"step": "impute", "columns": ["Assets"], "strategy": "median"},
            {"step": "scale", "columns": ["Amount"], "method": "standard"},
            {"step": "encode", "columns": ["Home"], "method": "one_hot"},
        ]
    }
    from_yaml = client.post(f"{url}/preview", content=YAML_RECIPE, headers=headers)
    from_json = client.post(f"{url}/preview", json=RECIPE)
    assert from_yaml.status_code == 200, from_yaml.text
    assert from_yaml.json() == from_json.json()


def test_yaml_recipe_applies_with_options_in_the_document(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    document = (
        f"version_id: {credit['version_id']}\n"
        "confirm_data_loss: true\n"
        "steps:\n"
        "  - {step: filter, expression: 'Age > 60'}\n"
    )
    r = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/apply",
        content=document,
        headers={"Content-Type": "application/yaml"},
    )
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    version = client.get(f"/api/v1/versions/{job['result']['version_id']}").json()
    assert version["recipe"] == {
        "steps": [{"step": "filter", "expression": "Age > 60", "enabled": True}]
    }
    assert version["parent_version_id"] == credit["version_id"]


def test_yaml_syntax_error_names_the_line(client: httpx.Client, credit: dict[str, Any]) -> None:
    broken = "steps:\n  - step: impute\n    columns: [Assets]\n   strategy: median\n"
    for action in ("validate", "preview", "apply"):
        r = client.post(
            f"/api/v1/datasets/{credit['id']}/recipes/{action}",
            content=broken,
            headers={"Content-Type": "application/yaml"},
        )
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_yaml"
        assert error["details"]["line"] == 4
        assert "line 4" in error["message"]
    assert len(client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]) == 1


def test_yaml_that_is_not_a_mapping_and_other_media_types_are_refused(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    url = f"/api/v1/datasets/{credit['id']}/recipes/validate"
    r = client.post(url, content="just text", headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_recipe"
    r = client.post(url, content="steps: 3", headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422
    assert r.json()["error"]["details"]["errors"][0]["location"] == "body.steps"
    r = client.post(url, content="<steps/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = client.post(url, content='{"steps": [}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_json"
    assert r.json()["error"]["details"] == {"line": 1, "column": 12}


def _slow_dataset(client: httpx.Client) -> dict[str, Any]:
    """10,000 rows where KNN imputation of half of a column takes seconds."""
    import io

    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    a = rng.normal(size=10_000)
    a[rng.random(10_000) < 0.5] = np.nan
    frame = pl.DataFrame(
        {"a": a, "b": rng.normal(size=10_000), "c": rng.normal(size=10_000)}
    ).with_columns(pl.col("a").fill_nan(None))
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    r = client.post("/api/v1/datasets", files={"file": ("slow.csv", buffer.getvalue())})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_cancelling_a_running_apply_job_creates_no_version(client: httpx.Client) -> None:
    dataset = _slow_dataset(client)
    slow = {
        "steps": [
            {
                "step": "impute",
                "columns": ["a", "b", "c"],
                "strategy": "knn",
                "max_train_rows": 50000,
            },
            {"step": "scale", "columns": ["a"], "method": "standard"},
        ]
    }
    r = client.post(f"/api/v1/datasets/{dataset['id']}/recipes/apply", json=slow)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    cancel = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    job = _wait(client, job_id)
    assert job["status"] == "cancelled", job
    assert job["message"] == "Cancelled; nothing was kept"
    assert job["result"] is None
    assert any(e["message"] == "Started" for e in job["events"])
    versions = client.get(f"/api/v1/datasets/{dataset['id']}/versions").json()["items"]
    assert [v["id"] for v in versions] == [dataset["version_id"]]
    assert (
        client.get(f"/api/v1/datasets/{dataset['id']}").json()["version_id"]
        == (dataset["version_id"])
    )


def test_reproduce_uses_the_target_recorded_at_apply_time(
    client: httpx.Client, credit: dict[str, Any]
) -> None:
    recipe = {"steps": [{"step": "encode", "columns": ["Home", "Job"], "method": "target"}]}
    vid = _apply(client, credit["id"], recipe)["result"]["version_id"]
    r = client.patch(f"/api/v1/datasets/{credit['id']}", json={"target": "Age"})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/v1/datasets/{credit['id']}").json()["target"] == "Age"
    rep = client.post(f"/api/v1/versions/{vid}/reproduce").json()
    assert rep["matches"] is True, rep
    # with the new target the same recipe gives different data, so the old one was used
    other = _apply(client, credit["id"], recipe, version_id=credit["version_id"])
    assert other["result"]["version_id"] != vid


@pytest.mark.parametrize(
    ("step", "expression"),
    [
        ("filter", "Age > (SELECT COUNT(*) FROM read_csv('/etc/passwd'))"),
        ("derive", "read_csv('/etc/hostname')"),
    ],
    ids=["filter-subquery", "derive-table-function"],
)
def test_expressions_cannot_read_server_files(
    client: httpx.Client, credit: dict[str, Any], step: str, expression: str
) -> None:
    body: dict[str, Any] = {"step": step, "expression": expression}
    if step == "derive":
        body["name"] = "leak"
    checked = client.post(
        f"/api/v1/datasets/{credit['id']}/recipes/validate", json={"steps": [body]}
    ).json()
    assert checked["valid"] is False
    assert [(i["code"], i["parameter"]) for i in checked["issues"]] == [
        ("forbidden_expression", "expression")
    ]
    for action in ("preview", "apply"):
        r = client.post(f"/api/v1/datasets/{credit['id']}/recipes/{action}", json={"steps": [body]})
        assert r.status_code in (400, 422), (action, r.text)
        assert "root:" not in r.text and "read_csv" in r.json()["error"]["message"]
    versions = client.get(f"/api/v1/datasets/{credit['id']}/versions").json()["items"]
    assert len(versions) == 1
