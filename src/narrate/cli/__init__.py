"""The ``narrate`` command line: serve, database, users and the workflow stages."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from narrate import __version__
from narrate.config import Settings, load_settings
from narrate.errors import NarrateError

__all__ = ["SERVE_LOG_FORMAT", "DataDir", "app", "fail", "load_local", "main"]

SERVE_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
"""How ``narrate serve`` prints log records: the request id ties lines to one request."""

app = typer.Typer(
    help="Narrate: machine learning for tabular data, explained in plain language.\n\n"
    "Settings come from NARRATE_* environment variables (see docs/configuration.md).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the metadata database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data folder (overrides NARRATE_DATA_DIR).", show_default=False
    ),
]


def load_local(data_dir: Path | None, **extra: Any) -> Settings:
    """Settings for commands that work on the local data dir."""
    return _settings(data_dir, **extra)


def _settings(data_dir: Path | None = None, **extra: Any) -> Settings:
    overrides: dict[str, Any] = dict(extra)
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return load_settings(**overrides)


def fail(exc: NarrateError) -> typer.Exit:
    """Print a NarrateError the way the CLI shows every error, and return the exit."""
    typer.secho(f"Error: {exc.message}", fg="red", err=True)
    if exc.hint:
        typer.echo(f"Hint: {exc.hint}", err=True)
    return typer.Exit(code=2 if exc.status < 500 else 1)


@app.command()
def version() -> None:
    """Print the Narrate version."""
    typer.echo(f"narrate {__version__}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Server processes sharing the port (default NARRATE_WORKERS, 1). Use about "
            "one per core to spread predictions; each has its own job pool.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Start the web UI and API.

    On the first start with no users, creates an 'admin' user with a random password and
    prints it once; with NARRATE_LOAD_SAMPLES (default on) it also loads the bundled sample
    datasets for that admin. With --workers N, N server processes share the port; a
    crashed one is replaced.
    """
    import uvicorn

    from narrate.bootstrap import build_container
    from narrate.services import samples, users
    from narrate.web.app import create_app
    from narrate.web.middleware import install_request_id_logging

    settings = _settings(data_dir)
    processes = workers or settings.workers
    install_request_id_logging()  # every record gets request_id ("-" outside a request)
    logging.basicConfig(level=settings.log_level, format=SERVE_LOG_FORMAT)
    # With several processes this one only supervises: no job pool of its own.
    container = build_container(settings, with_executor=processes == 1)
    try:
        container.db.require_current_schema()
        created = users.ensure_admin(container.db)
        if created is not None:
            admin, password = created
            typer.secho("Created the first user. Sign in with:", fg="green")
            typer.echo(f"  username: {admin.username}\n  password: {password}")
            typer.echo("This password is shown only once; change it by creating a new admin.")
            if settings.load_samples:
                for name in samples.load_samples(container, admin.id):
                    typer.echo(f"Loaded sample dataset: {name}")
    except NarrateError as exc:
        container.close()
        raise fail(exc) from exc
    typer.echo(f"Narrate is running on http://{host}:{port}  (Ctrl+C to stop)")
    sys.stdout.flush()
    if processes > 1:
        container.close()
        _serve_processes(settings, host, port, processes)
        return
    # The app closes the container on shutdown (uvicorn re-raises SIGTERM after its graceful
    # shutdown, so code after run() never runs); that ends the job worker processes, which
    # would otherwise outlive the server.
    app = create_app(settings, container, close_container=True)
    # X-Forwarded-For/-Proto are believed only from NARRATE_TRUSTED_PROXIES; uvicorn's own
    # default trusts loopback, where any local process (or a same-host proxy that passes the
    # header through) could pick the client address that login back-off counts.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
    )


def _serve_processes(settings: Settings, host: str, port: int, processes: int) -> None:
    """Run ``processes`` uvicorn workers, each building the app from the environment.

    The workers read their settings from ``NARRATE_*`` variables, so the data dir chosen
    here is passed down that way; Prometheus samples go to a per-start folder that
    ``/metrics`` sums over.
    """
    import shutil

    import uvicorn

    os.environ["NARRATE_DATA_DIR"] = str(settings.data_dir)
    metrics_dir = settings.data_dir / "run" / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)  # samples of an earlier start
    metrics_dir.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "narrate.web.app:app_from_env",
        factory=True,
        workers=processes,
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies),
    )


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply pending schema migrations (back up the database first)."""
    from narrate.storage.sql.database import Database

    settings = _settings(data_dir)
    db = Database(settings.resolved_database_url)
    before = db.current_revision()
    db.upgrade()
    typer.echo(f"Database schema: {before or 'empty'} -> {db.current_revision()}")
    db.dispose()


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name (3-64 letters, digits, . _ @ -).")],
    password: Annotated[
        str, typer.Option(help="At least 8 characters.", prompt=True, hide_input=True)
    ],
    role: Annotated[str, typer.Option(help="admin, analyst or viewer.")] = "analyst",
    data_dir: DataDir = None,
) -> None:
    """Create a user with a role."""
    from narrate.services import users
    from narrate.storage.sql.database import Database

    db = Database(_settings(data_dir).resolved_database_url)
    try:
        db.require_current_schema()
        user = users.create_user(db, username, password, role)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        db.dispose()
    typer.echo(f"Created user {user.username} ({user.role}), id {user.id}")


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """List users with their roles."""
    from narrate.services import users
    from narrate.storage.sql.database import Database

    db = Database(_settings(data_dir).resolved_database_url)
    try:
        db.require_current_schema()
        rows = users.list_users(db)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        db.dispose()
    for u in rows:
        state = "active" if u.is_active else "deactivated"
        typer.echo(f"{u.username:<24} {u.role:<8} {state:<12} {u.id}")


def main() -> None:
    """Entry point of the ``narrate`` script."""
    app()


# Sub-command groups live in their own modules; they import the helpers above.
from narrate.cli import datasets as _datasets  # noqa: E402
from narrate.cli import deploy as _deploy  # noqa: E402
from narrate.cli import models as _models  # noqa: E402
from narrate.cli import recipes as _recipes  # noqa: E402

app.add_typer(_datasets.app, name="datasets")
app.add_typer(_recipes.recipes_app, name="recipes")
app.add_typer(_recipes.versions_app, name="versions")
app.add_typer(_models.models_app, name="models")
app.command("train")(_models.train_command)
app.command("deploy")(_deploy.deploy_command)
app.add_typer(_deploy.deployments_app, name="deployments")
app.command("predict")(_deploy.predict_command)

from narrate.cli import explain as _explain  # noqa: E402

app.command("explain")(_explain.explain_command)

from narrate.cli import alerts as _alerts  # noqa: E402

app.add_typer(_alerts.alerts_app, name="alerts")

from narrate.cli import monitor as _monitor  # noqa: E402

app.add_typer(_monitor.actuals_app, name="actuals")
app.command("performance")(_monitor.performance_command)

from narrate.cli import recommend as _recommend  # noqa: E402

app.command("recommend")(_recommend.recommend_command)

from narrate.cli import schedules as _schedules  # noqa: E402

app.add_typer(_schedules.schedules_app, name="schedules")
app.command("drift")(_schedules.drift_command)
