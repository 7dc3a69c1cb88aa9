"""Recipe parsing, aliases, parameter validation and the step catalog."""

from __future__ import annotations

import json

import pytest

from narrate.core.recipes import Recipe, step_catalog, step_names
from narrate.core.recipes.steps import DropColumnsStep, ImputeStep
from narrate.errors import InvalidInput

EXAMPLE = {
    "steps": [
        {"step": "drop_missing", "columns": ["age"], "how": "any"},
        {"step": "filter", "expression": "age >= 18"},
        {"step": "derive", "name": "ratio", "expression": "income / (age + 1)"},
        {"step": "impute", "columns": ["income"], "strategy": "median"},
        {"step": "scale", "columns": ["income"], "method": "standard"},
        {"step": "encode", "columns": ["city"], "method": "one_hot"},
    ]
}


def test_parse_accepts_dict_json_and_yaml_equally() -> None:
    yaml_text = """
steps:
  - step: drop_missing
    columns: [age]
    how: any
  - {step: filter, expression: "age >= 18"}
  - {step: derive, name: ratio, expression: "income / (age + 1)"}
  - {step: impute, columns: [income], strategy: median}
  - {step: scale, columns: [income], method: standard}
  - {step: encode, columns: [city], method: one_hot}
"""
    from_dict = Recipe.parse(EXAMPLE)
    assert Recipe.parse(json.dumps(EXAMPLE)) == from_dict
    assert Recipe.parse(yaml_text) == from_dict
    assert [s.step for s in from_dict.steps][:2] == ["drop_missing", "filter"]


def test_drop_alias_becomes_drop_columns() -> None:
    recipe = Recipe.parse({"steps": [{"step": "drop", "columns": ["a"]}]})
    assert isinstance(recipe.steps[0], DropColumnsStep)
    assert recipe.to_dict()["steps"][0]["step"] == "drop_columns"


def test_disabled_step_is_parsed_with_enabled_false() -> None:
    recipe = Recipe.parse({"steps": [{"step": "drop", "columns": ["a"], "enabled": False}]})
    assert recipe.steps[0].enabled is False


def test_unknown_step_type_lists_valid_names() -> None:
    with pytest.raises(InvalidInput) as info:
        Recipe.parse({"steps": [{"step": "explode", "columns": ["a"]}]})
    assert info.value.code == "unknown_step"
    assert "explode" in info.value.message
    assert "drop_columns" in info.value.message
    assert "impute" in info.value.message
    assert info.value.details["issues"][0]["step_index"] == 0


@pytest.mark.parametrize(
    ("step", "parameter", "words"),
    [
        ({"step": "impute", "columns": ["a"], "strategy": "constant"}, None, "value"),
        ({"step": "scale", "columns": ["a"], "method": "zscore"}, "method", "standard"),
        ({"step": "drop_columns", "columns": []}, "columns", "at least one"),
        ({"step": "sample"}, None, "exactly one"),
        ({"step": "bin", "columns": ["a"], "method": "custom"}, None, "edges"),
        ({"step": "scale", "columns": ["a"], "colour": "red"}, "colour", "Extra"),
    ],
    ids=["constant-needs-value", "bad-method", "empty-columns", "sample-size", "edges", "extra"],
)
def test_invalid_parameters_name_step_and_parameter(
    step: dict[str, object], parameter: str | None, words: str
) -> None:
    with pytest.raises(InvalidInput) as info:
        Recipe.parse({"steps": [{"step": "drop", "columns": ["x"]}, step]})
    issue = info.value.details["issues"][0]
    assert info.value.code == "invalid_recipe"
    assert issue["step_index"] == 1
    assert issue["parameter"] == parameter
    assert words in issue["message"]
    assert "step 2" in info.value.message


def test_parse_rejects_text_that_is_not_a_recipe() -> None:
    with pytest.raises(InvalidInput) as info:
        Recipe.parse("just words")
    assert info.value.code == "invalid_recipe"
    assert "steps" in info.value.message


def test_describe_is_plain_language() -> None:
    step = ImputeStep(columns=["income"], strategy="median")
    assert step.describe() == "Fill missing values in 'income' with the column median."


def test_catalog_lists_every_step_with_schema_and_category() -> None:
    catalog = step_catalog()
    names = [entry["name"] for entry in catalog]
    assert names == step_names()
    assert len(names) == 21
    for entry in catalog:
        assert entry["title"]
        assert entry["description"]
        assert entry["category"]
        assert entry["json_schema"]["type"] == "object"
    impute = next(e for e in catalog if e["name"] == "impute")
    assert "knn" in json.dumps(impute["json_schema"])
    json.dumps(catalog)


def test_every_step_describes_itself_from_minimal_parameters() -> None:
    minimal = {
        "rename": {"mapping": {"a": "b"}},
        "cast": {"columns": ["a"], "to": "float"},
        "filter": {"expression": "a > 1"},
        "derive": {"name": "b", "expression": "a + 1"},
        "sample": {"n": 5},
        "text": {"columns": ["a"], "operation": "lowercase"},
        "drop_missing": {},
        "deduplicate": {},
    }
    for name in step_names():
        params = minimal.get(name, {"columns": ["a"]})
        recipe = Recipe.parse({"steps": [{"step": name, **params}]})
        assert recipe.steps[0].describe().endswith(".")
