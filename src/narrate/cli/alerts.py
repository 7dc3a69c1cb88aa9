"""`narrate alerts list`: the alert history of the local data dir, newest first."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.errors import NarrateError

__all__ = ["alerts_app"]

alerts_app: typer.Typer = typer.Typer(
    help="Alerts raised by alert rules on deployments.", no_args_is_help=True
)
STATUSES = ("open", "acknowledged", "resolved")


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


@alerts_app.command("list")
def alerts_list(
    deployment: Annotated[
        str | None, typer.Option(help="Only this deployment's alerts.", show_default=False)
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(help="open, acknowledged or resolved.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most alerts shown.")] = 100,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """List alerts: when last seen, status, severity, deployment, kind and message."""
    from narrate.services import alert_history as alerts

    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(STATUSES)}", param_hint="--status")
    container, owner = local_container(data_dir, as_user)
    try:
        items, total = alerts.list_alerts(
            container, owner, deployment=deployment, status=status, offset=0, limit=limit
        )
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    for a in items:
        if as_json:
            typer.echo(json.dumps({k: _plain(v) for k, v in a.items()}, sort_keys=True))
            continue
        seen = a["last_at"].strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{seen}  {a['status']:<12} {a['severity']:<8} {a['deployment']:<24} "
            f"{a['kind']:<12} x{a['count']:<4} {a['message']}  ({a['alert_id']})"
        )
    if not as_json and total > len(items):
        typer.echo(f"... and {total - len(items):,} more")
    if not as_json and not items:
        typer.echo("No alerts.")
