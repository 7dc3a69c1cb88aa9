"""`narrate schedules ...` and `narrate drift`: cron schedules of batch scoring, drift
checks and retraining, and a drift report on a deployment's traffic with a progress bar.

Both work on the local data dir through the same services as the HTTP routes. Schedules
fire in the server (``narrate serve``); ``narrate schedules run`` runs one now, here.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.errors import NarrateError

__all__ = ["drift_command", "schedules_app"]

schedules_app: typer.Typer = typer.Typer(
    help="Cron schedules of batch scoring, drift checks and retraining on deployments.",
    no_args_is_help=True,
)

ScheduleId = Annotated[str, typer.Argument(help="Schedule id (see `narrate schedules list`).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (as the API answers).")]


class _Deferred:
    """An executor that only remembers what was submitted, so the CLI can run it here
    with a progress bar (:func:`narrate.cli.recipes.run_with_progress`)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    def submit(self, job_id: str, entry: str) -> None:
        self.submitted.append((job_id, entry))

    def shutdown(self) -> None:
        """Nothing to release."""


def _run_jobs(container: Any, deferred: _Deferred, *, quiet: bool) -> None:
    """Run the submitted jobs here: with a progress bar, or quietly (``--json`` keeps
    stdout for the JSON).

    Raises:
        NarrateError: a job failed (its error).
    """
    from narrate.cli.recipes import run_with_progress
    from narrate.jobs.executors import run_job
    from narrate.jobs.records import get_job

    for job_id, entry in deferred.submitted:
        if not quiet:
            run_with_progress(container, job_id, entry)
            continue
        run_job(container.settings.model_dump_json(), job_id, entry)
        job = get_job(container.db, job_id)
        if job.status != "succeeded":
            err = job.error or {}
            raise NarrateError(
                str(err.get("message", job.status)), code=str(err.get("code", "job_failed"))
            )


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=str, sort_keys=True))


def _line(item: dict[str, Any]) -> str:
    action = item["action"]
    what = action["kind"] + (f" {action['window']}" if action.get("window") else "")
    state = "paused" if item["paused"] else "active"
    nxt = (item["next_run_at"] or "-")[:19]
    return (
        f"{item['schedule_id']}  {state:<7} {item['cron']:<16} {item['timezone']:<14} "
        f"{what:<12} {action['deployment']:<20} next {nxt}  {item['name']}"
    )


@schedules_app.command("list")
def schedules_list(
    deployment: Annotated[
        str | None, typer.Option(help="Only this deployment's schedules.", show_default=False)
    ] = None,
    as_json: AsJson = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """List schedules: id, state, cron, time zone, action, deployment and next run."""
    from narrate.services import schedules

    container, owner = local_container(data_dir, as_user)
    try:
        items, _ = schedules.list_schedules(container, owner, deployment=deployment, limit=500)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    for item in items:
        _echo_json(item) if as_json else typer.echo(_line(item))
    if not items and not as_json:
        typer.echo("No schedules.")


@schedules_app.command("add")
def schedules_add(
    cron: Annotated[str, typer.Option(help="Five cron fields, e.g. '0 6 * * *' (06:00 daily).")],
    kind: Annotated[str, typer.Option(help="batch, drift or retrain.")],
    deployment: Annotated[str, typer.Option(help="The deployment's name.")],
    version_id: Annotated[
        str | None, typer.Option(help="batch: the dataset version to score.")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(help="batch: an s3://bucket/key object to score instead of a version."),
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="drift: the traffic window (default 7d).")
    ] = None,
    policy: Annotated[str | None, typer.Option(help="retrain: refit (default) or search.")] = None,
    auto_promote: Annotated[
        bool | None,
        typer.Option(
            "--auto-promote/--wait-for-decision",
            help="retrain: promote when the challenger wins by --margin, or wait for a person.",
            show_default=False,
        ),
    ] = None,
    margin: Annotated[
        float | None, typer.Option(help="retrain: the margin auto-promote needs.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of the cron.")] = "UTC",
    name: Annotated[str | None, typer.Option(help="A name to recognise it by.")] = None,
    max_retries: Annotated[int, typer.Option(min=0, max=10, help="Retries of a failed run.")] = 2,
    misfire_grace_s: Annotated[
        int, typer.Option(min=0, help="A run missed while no server ran is made up within this.")
    ] = 3600,
    as_json: AsJson = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Add a schedule; it fires in the running server (`narrate serve`)."""
    from narrate.services import schedules

    action = {
        "kind": kind,
        "deployment": deployment,
        "version_id": version_id,
        "path": path,
        "window": window,
        "policy": policy,
        "auto_promote": auto_promote,
        "margin": margin,
    }
    spec = {
        "cron": cron,
        "timezone": timezone,
        "name": name,
        "action": {k: v for k, v in action.items() if v is not None},
        "max_retries": max_retries,
        "misfire_grace_s": misfire_grace_s,
    }
    container, owner = local_container(data_dir, as_user)
    try:
        item = schedules.create_schedule(container, owner, spec)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        _echo_json(item)
        return
    typer.echo(f"Added schedule {item['schedule_id']}; next run at {item['next_run_at']}.")


def _set(schedule_id: str, enabled: bool, as_user: str | None, data_dir: Any) -> dict[str, Any]:
    from narrate.services import schedules

    container, owner = local_container(data_dir, as_user)
    try:
        return schedules.set_enabled(container, owner, schedule_id, enabled)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()


@schedules_app.command("pause")
def schedules_pause(
    schedule_id: ScheduleId, as_user: AsUser = None, data_dir: DataDir = None
) -> None:
    """Pause a schedule (it stops firing until resumed)."""
    _set(schedule_id, False, as_user, data_dir)
    typer.echo(f"Paused schedule {schedule_id}.")


@schedules_app.command("resume")
def schedules_resume(
    schedule_id: ScheduleId, as_user: AsUser = None, data_dir: DataDir = None
) -> None:
    """Resume a schedule; it fires next at the next cron time from now."""
    item = _set(schedule_id, True, as_user, data_dir)
    typer.echo(f"Resumed schedule {schedule_id}; next run at {item['next_run_at']}.")


@schedules_app.command("run")
def schedules_run(
    schedule_id: ScheduleId,
    as_json: AsJson = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Run a schedule's action now, in this process, with a progress bar; the run is
    recorded in the schedule's history like one the server starts."""
    from narrate.services import schedule_runs

    container, owner = local_container(data_dir, as_user)
    deferred = _Deferred()
    container.executor = deferred
    try:
        run = schedule_runs.run_now(container, owner, schedule_id)
        try:
            _run_jobs(container, deferred, quiet=as_json)
        except NarrateError as exc:  # the run records the failure (and its retry)
            typer.secho(f"The job failed: {exc.message}", fg="red", err=True)
        run = schedule_runs.settle_run(container, run["run_id"])
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        _echo_json(run)
    else:
        typer.echo(f"Run {run['run_id']}: {run['status']} — {run['message']}")
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@schedules_app.command("runs")
def schedules_runs(
    schedule_id: ScheduleId,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most runs shown.")] = 20,
    as_json: AsJson = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """A schedule's runs, newest first: when due, attempt, status, job and message."""
    from narrate.services import schedules

    container, owner = local_container(data_dir, as_user)
    try:
        items, total = schedules.list_runs(container, owner, schedule_id, limit=limit)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    for r in items:
        if as_json:
            _echo_json(r)
            continue
        typer.echo(
            f"{r['scheduled_for'][:19]}  #{r['attempt']} {r['trigger']:<7} {r['status']:<10} "
            f"job {r['job_id'] or '-':<32} {r['message']}"
        )
    if not as_json and not items:
        typer.echo("No runs yet.")
    elif not as_json and total > len(items):
        typer.echo(f"... and {total - len(items):,} more")


def drift_command(
    deployment: Annotated[str, typer.Argument(help="Deployment name.")],
    window: Annotated[str, typer.Option(help="Traffic window: 30m, 24h, 7d, 2w ...")] = "7d",
    as_json: AsJson = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Compare a deployment's traffic in the last WINDOW with its training data (a drift
    report, with a progress bar), then print the narrative and the most drifted columns."""
    from narrate.services import drift

    container, owner = local_container(data_dir, as_user)
    deferred = _Deferred()
    container.executor = deferred
    try:
        started = drift.start_deployment_drift(container, owner, deployment, window=window)
        _run_jobs(container, deferred, quiet=as_json)
        report = drift.get_report(container, owner, started["created_id"])
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(report, default=str, indent=2))
        return
    overall = report["overall"] or {}
    typer.echo(f"Drift of {deployment} over the last {window}: {overall.get('level', '?')}")
    typer.echo((report["narrative"] or {}).get("text", ""))
    typer.echo(f"{'column':<28} {'kind':<12} {'PSI':>8}  level")
    for column in (report["columns"] or [])[:10]:
        psi = column.get("psi")
        shown = f"{psi:.4f}" if isinstance(psi, int | float) else "-"
        typer.echo(f"{column['column']:<28} {column['kind']:<12} {shown:>8}  {column['level']}")
