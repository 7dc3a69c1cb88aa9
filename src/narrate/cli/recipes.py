"""`narrate recipes` and `narrate versions`: transform datasets, inspect lineage."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.errors import NarrateError

__all__ = ["recipes_app", "run_with_progress", "versions_app"]

recipes_app: typer.Typer = typer.Typer(
    help="Apply transformation recipes (JSON or YAML).", no_args_is_help=True
)
versions_app: typer.Typer = typer.Typer(
    help="List, diff and reproduce dataset versions.", no_args_is_help=True
)


def _read_recipe(path: Path) -> str:
    if not path.is_file():
        typer.secho(f"Error: recipe file {path} does not exist.", fg="red", err=True)
        raise typer.Exit(code=2)
    return path.read_text(encoding="utf-8")


def run_with_progress(container: Any, job_id: str, entry: str) -> dict[str, Any]:
    """Run a job in this process while a progress bar follows its recorded progress."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from narrate.jobs.executors import run_job
    from narrate.jobs.records import get_job

    settings_json = container.settings.model_dump_json()
    worker = threading.Thread(target=run_job, args=(settings_json, job_id, entry), daemon=True)
    worker.start()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("Queued", total=1.0)
        while worker.is_alive():
            job = get_job(container.db, job_id)
            bar.update(task, completed=job.progress, description=job.message[:60])
            time.sleep(0.2)
        job = get_job(container.db, job_id)
        bar.update(task, completed=job.progress, description=job.message[:60])
    if job.status != "succeeded":
        err = job.error or {}
        raise NarrateError(
            str(err.get("message", job.status)), code=str(err.get("code", "job_failed"))
        )
    return dict(job.result or {})


@recipes_app.command("apply")
def recipes_apply(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id (see `narrate datasets list`).")],
    recipe: Annotated[Path, typer.Argument(help="Recipe file: JSON or YAML with a 'steps' list.")],
    confirm_data_loss: Annotated[
        bool, typer.Option(help="Apply even when > 50% of rows or the target would be removed.")
    ] = False,
    preview_only: Annotated[
        bool, typer.Option("--preview", help="Only preview on a sample.")
    ] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Validate, preview and apply a recipe; the result is a new dataset version."""
    from narrate.services import recipes

    text = _read_recipe(recipe)
    container, owner = local_container(data_dir, as_user)
    try:
        report = recipes.validate(container, owner, dataset_id, text)
        if not report["valid"]:
            for issue in report["issues"]:
                typer.secho(f"  step {issue['step_index']}: {issue['message']}", fg="red", err=True)
            raise typer.Exit(code=2)
        p = recipes.preview(container, owner, dataset_id, text)
        rows = p["rows"]
        typer.echo(
            f"Preview: {rows['before']:,} -> {rows['after']:,} rows; columns added "
            f"{p['columns']['added']}, removed {p['columns']['removed']}"
        )
        for w in p["warnings"]:
            typer.secho(f"  warning: {w['message']}", fg="yellow")
        if preview_only:
            return
        job_id = recipes.create_apply_job(
            container, owner, dataset_id, text, confirm_data_loss=confirm_data_loss
        )
        result = run_with_progress(container, job_id, recipes.APPLY_ENTRY)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    reused = " (identical to an existing version)" if result.get("reused") else ""
    typer.echo(f"New version {result['version_id']}{reused}")


@versions_app.command("list")
def versions_list(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """List a dataset's versions with their parents and recipes."""
    from narrate.services import datasets

    container, owner = local_container(data_dir, as_user)
    try:
        items = datasets.list_versions(container, owner, dataset_id)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    for v in items:
        steps = [s.get("step") for s in (v["recipe"] or {}).get("steps", [])]
        made = " -> ".join(str(s) for s in steps) if steps else v["note"]
        typer.echo(
            f"v{v['number']:<3} {v['id']}  {v['n_rows']:>10,} rows {v['n_columns']:>4} cols  {made}"
        )


@versions_app.command("diff")
def versions_diff(
    version_a: Annotated[str, typer.Argument(help="First version id.")],
    version_b: Annotated[str, typer.Argument(help="Second version id.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Show schema changes, row counts and per-column stat deltas between two versions."""
    from narrate.services import recipes

    container, owner = local_container(data_dir, as_user)
    try:
        out = recipes.compare_versions(container, owner, version_a, version_b)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(json.dumps(out["diff"], indent=2, default=str))


@versions_app.command("reproduce")
def versions_reproduce(
    version_id: Annotated[str, typer.Argument(help="Version id to rebuild.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Rebuild a version from its root upload and check that the hash matches."""
    from narrate.services import recipes

    container, owner = local_container(data_dir, as_user)
    try:
        out = recipes.reproduce_version(container, owner, version_id)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if out["matches"]:
        typer.secho(
            f"Reproduced {version_id}: hash {out['reproduced_hash'][:16]} matches.", fg="green"
        )
    else:
        typer.secho(
            f"Mismatch: expected {out['expected_hash'][:16]}, got {out['reproduced_hash'][:16]}.",
            fg="red",
            err=True,
        )
        raise typer.Exit(code=1)
