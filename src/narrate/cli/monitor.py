"""`narrate actuals upload` and `narrate performance`: post the true outcomes of a
deployment's logged predictions, and see how its live predictions score against them.

Both work on the local data dir through the same services as the HTTP routes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.errors import NarrateError, TooLarge

__all__ = ["actuals_app", "performance_command"]

actuals_app: typer.Typer = typer.Typer(
    help="Post the actual outcomes of a deployment's logged predictions.", no_args_is_help=True
)

DeploymentName = Annotated[
    str, typer.Argument(help="Deployment name (see `narrate deployments list`).")
]


@actuals_app.command("upload")
def actuals_upload(
    deployment: DeploymentName,
    file: Annotated[
        Path, typer.Argument(help="CSV file with a header row.", exists=True, dir_okay=False)
    ],
    id_column: Annotated[
        str, typer.Option(help="Column holding the prediction ids the predictions answered with.")
    ],
    actual_column: Annotated[str, typer.Option(help="Column holding the actual outcomes.")],
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Record the actual outcome of each prediction id in FILE (at most 100,000 rows).

    A second actual for the same prediction replaces the first and keeps it as a record.
    A bad value stops the upload, naming its line and column; nothing is written then.
    """
    from narrate.services import actuals

    container, owner = local_container(data_dir, as_user)
    try:
        limit_mb = container.settings.max_actuals_body_mb
        if file.stat().st_size > limit_mb * 1024 * 1024:
            raise TooLarge(
                f"{file.name} is larger than {limit_mb} MB (NARRATE_MAX_ACTUALS_BODY_MB).",
                code="body_too_large",
                hint="Split it into smaller files.",
                details={"parameter": "file", "limit_mb": limit_mb},
            )
        deployment_id = actuals.deployment_id_for(container, owner, deployment)
        items = actuals.parse_actuals_csv(
            file.read_bytes(), id_column=id_column, actual_column=actual_column
        )
        out = actuals.record_actuals(
            container, deployment_id, items, id_column=id_column, actual_column=actual_column
        )
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(
        f"Recorded {out['received']:,} actuals for {deployment}: {out['matched']:,} matched a "
        f"logged prediction, {out['replaced']:,} replaced an earlier actual."
    )
    unmatched = out["unmatched"]
    if unmatched["count"]:
        typer.secho(
            f"  {unmatched['count']:,} ids are not in the prediction log (yet), e.g. "
            f"{', '.join(unmatched['examples'][:5])}; they are kept and count once logged.",
            fg="yellow",
        )


def _interval(window: dict[str, Any], metric: str) -> str:
    bounds = window["intervals"].get(metric)
    return f"[{bounds[0]:.4f}, {bounds[1]:.4f}]" if bounds else ""


def _show(out: dict[str, Any]) -> None:
    primary = out["primary_metric"]
    baseline = out["baseline"].get(primary)
    shown = f"{baseline:.4f}" if baseline is not None else "none"
    typer.echo(
        f"{out['deployment']} — model version {out['model_version_id']} ({out['task']}), "
        f"{out['window']} windows; {primary} baseline (holdout) {shown}"
    )
    typer.echo(f"{'window start':<26} {'labelled':>8}  {primary:<10} 95% interval")
    for window in out["windows"]:
        value = window["metrics"].get(primary)
        text = f"{value:.4f}" if value is not None else "—"
        mark = "" if window["is_complete"] else "  (in progress)"
        start = window["start"].isoformat() if hasattr(window["start"], "isoformat") else ""
        typer.echo(
            f"{start[:25]:<26} {window['n']:>8,}  {text:<10} {_interval(window, primary)}{mark}"
        )
    if out["degraded"]:
        drop = out["degradation"]
        typer.secho(
            f"DEGRADED: {drop['metric']} {drop['current']:.4f} vs baseline "
            f"{drop['baseline']:.4f} ({drop['relative_drop'] * 100:.1f}% worse, "
            f"more than {drop['threshold'] * 100:.1f}%).",
            fg="red",
        )
    typer.echo(out["narrative"]["text"])


def performance_command(
    deployment: DeploymentName,
    window: Annotated[
        str, typer.Option(help="Window length: 1d, 7d, 30d (or 12h, 2w ...).")
    ] = "1d",
    by: Annotated[
        str | None, typer.Option(help="Also break down by 'version' or 'arm' (with --json).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole result as JSON (as the API answers).")
    ] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Show a deployment's live performance per window against its holdout baseline, and
    whether it is degraded (NARRATE_PERFORMANCE_DROP, NARRATE_PERFORMANCE_MIN_ROWS)."""
    from narrate.errors import InvalidInput
    from narrate.services import performance

    container, owner = local_container(data_dir, as_user)
    try:
        if by not in (None, "version", "arm"):
            raise InvalidInput(
                f"--by must be 'version' or 'arm'; got '{by}'.", details={"parameter": "by"}
            )
        out = performance.deployment_performance(
            container,
            owner,
            deployment,
            window=window,
            by=by,  # type: ignore[arg-type]
        )
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(out, default=str, indent=2))
        return
    _show(out)
