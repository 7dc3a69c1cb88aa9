"""`narrate train` and `narrate models`: AutoML with a live progress bar, the registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.cli.recipes import run_with_progress
from narrate.errors import NarrateError

__all__ = ["models_app", "train_command"]

models_app: typer.Typer = typer.Typer(help="The model registry.", no_args_is_help=True)


def train_command(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id (see `narrate datasets list`).")],
    target: Annotated[
        str | None, typer.Option(help="Column to predict (default: the dataset's target).")
    ] = None,
    budget: Annotated[float, typer.Option(help="Time budget in seconds.")] = 60,
    task: Annotated[
        str | None, typer.Option(help="Override the detected task: binary, multiclass, regression.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric to optimise (e.g. roc_auc, rmse).")
    ] = None,
    max_trials: Annotated[int | None, typer.Option(help="Cap on candidates tried.")] = None,
    family: Annotated[
        list[str] | None, typer.Option("--family", help="Model families to try (repeatable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed + trials = same result).")] = 0,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Train a model on a dataset within a time budget, showing a live progress bar."""
    from narrate.services import models, training

    options: dict[str, Any] = {"time_budget_s": budget, "seed": seed}
    for key, value in (
        ("target", target),
        ("task", task),
        ("metric", metric),
        ("max_trials", max_trials),
        ("families", family),
    ):
        if value:
            options[key] = value
    container, owner = local_container(data_dir, as_user)
    try:
        model, job_id = training.prepare_training(container, owner, dataset_id, options)
        typer.echo(f"Training model {model.id}: {model.task} problem, target {model.target}")
        result = run_with_progress(container, job_id, training.TRAIN_ENTRY)
        detail = models.get_model_version(container, owner, result["model_version_id"])
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    metric = (detail.get("details") or {}).get("metric") or detail["config"].get("metric")
    _print_leaderboard(detail["leaderboard"], str(metric or ""))
    typer.echo(detail["narrative"])
    typer.echo(f"Model version {detail['id']}")


def _print_leaderboard(rows: list[dict[str, Any]], metric: str) -> None:
    """The leaderboard as a table: rank, candidate, CV score, trials, fit time."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Leaderboard" + (f" ({metric}, cross-validated)" if metric else ""))
    for name, justify in (("#", "right"), ("candidate", "left"), ("score", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name in ("± std", "trials", "fit s"):
        table.add_column(name, justify="right")
    for row in rows:
        std, fit = row.get("cv_score_std"), row.get("fit_time_s")
        table.add_row(
            str(row.get("rank", "")),
            str(row.get("family", "")),
            f"{row['cv_score_mean']:.4f}" if row.get("cv_score_mean") is not None else "failed",
            f"{std:.4f}" if std is not None else "",
            str(row.get("n_trials") or ""),
            f"{fit:.2f}" if fit is not None else "",
        )
    Console(width=100).print(table)


@models_app.command("list")
def models_list(as_user: AsUser = None, data_dir: DataDir = None) -> None:
    """List models with their status and best family."""
    from narrate.services import models

    container, owner = local_container(data_dir, as_user)
    try:
        items = models.list_models(container, owner)
    finally:
        container.close()
    for m in items:
        typer.echo(
            f"{m['id']}  {m['name'][:40]:<40} {m['task']:<10} {m['status']:<9} {m['family'] or ''}"
        )
    if not items:
        typer.echo("No models yet. Train one with: narrate train DATASET_ID --target COLUMN")


@models_app.command("show")
def models_show(
    model_id: Annotated[str, typer.Argument(help="Model id.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Show a model's versions, holdout metrics and narrative."""
    from narrate.services import models

    container, owner = local_container(data_dir, as_user)
    try:
        m = models.get_model(container, owner, model_id)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(f"{m['name']} — {m['task']}, target {m['target']}, status {m['status']}")
    for v in m["versions"]:
        shown = {
            k: round(x["value"], 4)
            for k, x in v["metrics"].items()
            if isinstance(x, dict) and isinstance(x.get("value"), float)
        }
        typer.echo(f"  v{v['number']} {v['id']} {v['family']}: {json.dumps(shown)}")
    if m["versions"]:
        typer.echo(m["versions"][-1]["narrative"])


@models_app.command("card")
def models_card(
    model_version_id: Annotated[str, typer.Argument(help="Model version id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[str, typer.Option(help="html or md.")] = "html",
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Write the model card (HTML or Markdown) of a model version to a file."""
    from narrate.services import models

    container, owner = local_container(data_dir, as_user)
    try:
        text = models.model_card(container, owner, model_version_id, format)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}")


@models_app.command("download")
def models_download(
    model_version_id: Annotated[str, typer.Argument(help="Model version id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    format: Annotated[
        str,
        typer.Option(
            help="serving (loads without scikit-learn: narrate.core.serving.load_serving) "
            "or joblib (the scikit-learn pipeline: narrate.core.automl.load_model)."
        ),
    ] = "serving",
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Write a model version's saved model to a file; it takes the raw upload's rows."""
    from narrate.services import models

    container, owner = local_container(data_dir, as_user)
    try:
        data, _ = models.model_artifact(container, owner, model_version_id, format)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    output.write_bytes(data)
    typer.echo(f"Wrote {output} ({len(data):,} bytes, {format})")
