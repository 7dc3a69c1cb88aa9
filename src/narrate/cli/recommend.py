"""`narrate recommend`: the assistant's recommendations for a dataset or a trained model."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.errors import NarrateError, NotFound

__all__ = ["recommend_command"]


def recommend_command(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id (see `narrate datasets list`).")],
    target: Annotated[
        str | None,
        typer.Option(help="Column to predict (default: the dataset's target)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Recommendations after this model's evaluation instead (a model trained on "
            "the dataset).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Recommend what to do next: targets, columns to leave out, cleaning, training options.

    Each recommendation says why (with its numbers), what it changes, and its one-click
    action: recipe steps for `narrate recipes apply`, or training options for `narrate
    train`. Deterministic and offline (see docs/assistant.md).
    """
    from narrate.services import models, recommend

    container, owner = local_container(data_dir, as_user)
    try:
        if model is None:
            body = recommend.dataset_recommendations(container, owner, dataset_id, target=target)
        else:
            if models.get_model(container, owner, model)["dataset_id"] != dataset_id:
                raise NotFound(
                    f"Model '{model}' was not trained on dataset '{dataset_id}'.",
                    hint="Pass the dataset the model was trained on (see `narrate models list`).",
                    details={"parameter": "model", "model_id": model},
                )
            body = recommend.model_recommendations(container, owner, model)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    _print_items(body["items"])


def _action_text(action: dict[str, Any]) -> str:
    if action["type"] == "recipe_steps":
        return "recipe steps " + json.dumps(action["steps"], ensure_ascii=False)
    if action["type"] == "training_options":
        return "training options " + json.dumps(action["options"], ensure_ascii=False)
    return "none (advice)"


def _print_items(items: list[dict[str, Any]]) -> None:
    if not items:
        typer.echo("No recommendations: nothing stands out.")
        return
    for number, item in enumerate(items, start=1):
        typer.echo(f"{number}. [{item['severity']}] {item['title']}  ({item['id']})")
        typer.echo(f"   Why: {item['reason']}")
        typer.echo(f"   Effect: {item['effect']}")
        typer.echo(f"   Action: {_action_text(item['action'])}")
