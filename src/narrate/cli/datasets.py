"""`narrate datasets`: upload and inspect datasets on the local data dir."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail, load_local
from narrate.errors import NarrateError

__all__ = ["AsUser", "app", "local_container"]

app: typer.Typer = typer.Typer(help="Upload and inspect datasets.", no_args_is_help=True)

AsUser = Annotated[
    str | None,
    typer.Option("--as", help="Act as this user (default: the first admin).", show_default=False),
]


def local_container(data_dir: Path | None, as_user: str | None) -> tuple[Any, Any]:
    """A container on the local data dir and the acting user's owner view."""
    from narrate.bootstrap import build_container
    from narrate.services.datasets import Owner
    from narrate.services.users import find_user

    container = build_container(load_local(data_dir), with_executor=False)
    try:
        container.db.require_current_schema()
        user = find_user(container.db, as_user)
    except NarrateError as exc:
        container.close()
        raise fail(exc) from exc
    return container, Owner(user.id, user.role == "admin")


def _shown_profile(container: Any, version: Any, viewer_id: str) -> bytes:
    """The version's profile as every transport shows it: personal data masked."""
    from narrate.services import datasets, profiles

    stored = datasets.profile_bytes(container, version)
    return profiles.present_profile(stored, owner_id=version.owner_id, viewer_id=viewer_id)


@app.command("add")
def datasets_add(
    file: Annotated[Path, typer.Argument(help="CSV, TSV, XLSX, Parquet, JSON or JSONL file.")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: file name).")] = None,
    sheet: Annotated[str | None, typer.Option(help="Excel sheet to read.")] = None,
    skip_bad_lines: Annotated[
        bool, typer.Option(help="Skip rows with the wrong number of fields.")
    ] = False,
    target: Annotated[str | None, typer.Option(help="Column you want to predict.")] = None,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Upload a file as a new dataset, then print its summary and narrative."""
    import json

    from narrate.core.data.readers import ReadOptions
    from narrate.services import datasets

    if not file.is_file():
        typer.secho(f"Error: {file} is not a file.", fg="red", err=True)
        raise typer.Exit(code=2)
    container, owner = local_container(data_dir, as_user)
    try:
        from rich.console import Console

        with Console(stderr=True).status(f"Reading, checking and profiling {file.name} ..."):
            out = datasets.ingest_file(
                container,
                owner.user_id,
                file,
                filename=file.name,
                name=name,
                target=target,
                options=ReadOptions(sheet=sheet, skip_bad_lines=skip_bad_lines),
            )
        version = out["version"]
        stored = datasets.get_version(container, owner, version["id"])
        profile = json.loads(_shown_profile(container, stored, owner.user_id))
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(f"Dataset {out['name']} ({out['id']}), version {version['id']}")
    typer.echo(f"{version['n_rows']:,} rows x {version['n_columns']} columns")
    for warning in version["warnings"]:
        typer.secho(f"  note: {warning}", fg="yellow")
    typer.echo(profile.get("narrative", ""))


@app.command("list")
def datasets_list(as_user: AsUser = None, data_dir: DataDir = None) -> None:
    """List datasets with their size."""
    from narrate.services import datasets

    container, owner = local_container(data_dir, as_user)
    try:
        page = datasets.list_datasets(container, owner, limit=500)
    finally:
        container.close()
    for d in page["items"]:
        typer.echo(f"{d['id']}  {d['name']:<30} {d['n_rows']:>10,} rows {d['n_columns']:>4} cols")
    if not page["items"]:
        typer.echo("No datasets yet. Add one with: narrate datasets add FILE")


@app.command("show")
def datasets_show(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id (see `narrate datasets list`).")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Show a dataset's columns, warnings and narrative."""
    import json

    from narrate.services import datasets

    container, owner = local_container(data_dir, as_user)
    try:
        d = datasets.get_dataset(container, owner, dataset_id)
        version = datasets.get_version(container, owner, d["version_id"])
        profile = json.loads(_shown_profile(container, version, owner.user_id))
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(f"{d['name']} ({d['id']}) — version {version.number}, {version.n_rows:,} rows")
    for col in version.columns:
        typer.echo(f"  {col['name']:<30} {col['kind']:<12} {col['dtype']}")
    for w in profile.get("warnings", []):
        typer.secho(f"  [{w['severity']}] {w['message']}", fg="yellow")
    typer.echo(profile.get("narrative", ""))
