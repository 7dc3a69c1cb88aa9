"""`narrate deploy`, `narrate deployments` and `narrate predict`: serve a model version
under a name, change or roll back what it serves, and score rows or whole files with it.

The commands work on the local data dir through the services, like the other commands:
a prediction made here is answered by the same code and written to the same prediction
log as one made over HTTP, and a file is scored by the same batch job, run in this
process while a progress bar follows it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.cli.recipes import run_with_progress
from narrate.errors import InvalidInput, NarrateError, NotFound

__all__ = ["deploy_command", "deployments_app", "predict_command"]

deployments_app: typer.Typer = typer.Typer(
    help="List, inspect, roll back and undeploy deployments.", no_args_is_help=True
)

DeploymentName = Annotated[
    str, typer.Argument(help="Deployment name (see `narrate deployments list`).")
]
Reason = Annotated[
    str, typer.Option(help="Why you make the change; kept with the revision (up to 500 chars).")
]
_JSON_KINDS = {bool: "true or false", int: "a number", float: "a number", str: "a string"}
#: Output formats of `narrate predict --file`, by the extension of --out.
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def _fail(exc: NarrateError, name: str) -> typer.Exit:
    """Show an error; a hint that names the HTTP restore route names the command instead."""
    if exc.hint and "/restore" in exc.hint:
        exc.hint = f"Restore it with `narrate deployments restore {name}`, or pick another name."
    return fail(exc)


def _username(container: Any, as_user: str | None) -> str:
    """Who predictions made here are logged as (the same label the API uses: a username)."""
    from narrate.services.users import find_user

    return str(find_user(container.db, as_user).username)


def _version_label(d: dict[str, Any]) -> str:
    number = d.get("model_version_number")
    return f"model version {number} ({d['model_version_id']})" if number else d["model_version_id"]


# --- deploy ---------------------------------------------------------------------------------


def deploy_command(
    model_version_id: Annotated[
        str, typer.Argument(help="Model version to serve (see `narrate models show MODEL_ID`).")
    ],
    name: Annotated[
        str,
        typer.Option(
            help="Deployment name: 1-63 lower-case letters, digits and dashes; it becomes part "
            "of the URL. If you already deploy under this name, it switches to this version "
            "as a new revision (undo with `narrate deployments rollback`)."
        ),
    ],
    reason: Reason = "",
    description: Annotated[
        str | None, typer.Option(help="What the deployment is for (new deployments only).")
    ] = None,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Deploy a model version under a name, then print its URL and an example command."""
    from narrate.services import deployments
    from narrate.services.predict import runtime_cache

    container, owner = local_container(data_dir, as_user)
    try:
        try:
            before: dict[str, Any] | None = deployments.get_deployment(container, owner, name)
        except NotFound:
            before = None
        if before is None:
            out = deployments.create_deployment(
                container,
                owner,
                name=name,
                model_version_id=model_version_id,
                description=description or "",
                reason=reason,
            )
            typer.echo(f"Deployed {out['name']}: {_version_label(out)}, revision 1.")
        else:
            # Naming a version pins it: a followed stage would otherwise move it again.
            out = deployments.update_deployment(
                container,
                owner,
                name,
                model_version_id=model_version_id,
                follow_stage=None,
                reason=reason,
            )
            if out["revision"] == before["revision"]:
                typer.echo(f"{name} already serves {_version_label(out)}; nothing changed.")
            else:
                typer.echo(
                    f"Updated {name}: now serves {_version_label(out)}, revision "
                    f"{out['revision']} (it served {_version_label(before)})."
                )
        # Loading it now shows at once whether it can answer, and gives a real example row.
        runtime = runtime_cache(container).runtime(name, owner)
    except NarrateError as exc:
        raise _fail(exc, name) from exc
    finally:
        container.close()
    typer.echo(f"URL: POST {out['url']}  (on the server `narrate serve` starts)")
    if out.get("engine_note"):
        typer.secho(f"  note: {out['engine_note']}", fg="yellow")
    example = runtime.primary.signature.get("example_row")
    if isinstance(example, dict):
        row = json.dumps(example, default=str)
        typer.echo(f"Try it: narrate predict {name} --row '{row}'")


# --- deployments ----------------------------------------------------------------------------


@deployments_app.command("list")
def deployments_list(as_user: AsUser = None, data_dir: DataDir = None) -> None:
    """List deployments: name, the model version served, revision and engine."""
    from narrate.services import deployments

    container, owner = local_container(data_dir, as_user)
    try:
        items, total = deployments.list_deployments(container, owner, limit=500)
    finally:
        container.close()
    for d in items:
        version = f"v{d['model_version_number'] or '?'}"
        model = str(d["model_name"] or d["model_id"])[:40]
        typer.echo(
            f"{d['name']:<24} {version:<5} {model:<40} {d['task'] or '':<10} "
            f"rev {d['revision']:<3} {d['engine']:<8} {d['model_version_id']}"
        )
    if total > len(items):
        typer.echo(f"... and {total - len(items):,} more")
    if not items:
        typer.echo("No deployments yet. Deploy a model version with: narrate deploy MV_ID --name N")


@deployments_app.command("show")
def deployments_show(
    name: DeploymentName, as_user: AsUser = None, data_dir: DataDir = None
) -> None:
    """Show what a deployment serves and its revisions (who changed what, when and why)."""
    from narrate.services import deployments

    container, owner = local_container(data_dir, as_user)
    try:
        d = deployments.get_deployment(container, owner, name)
    except NarrateError as exc:
        raise _fail(exc, name) from exc
    finally:
        container.close()
    typer.echo(f"{d['name']} — {d['model_name']} ({d['task']}), revision {d['revision']}")
    typer.echo(f"  serves     {_version_label(d)}, engine {d['engine']}")
    if d.get("follow_stage"):
        typer.echo(f"  follows    the model's {d['follow_stage']} version")
    if d.get("shadow_model_version_id"):
        typer.echo(f"  shadow     {d['shadow_model_version_id']}")
    if d.get("canary_model_version_id"):
        share = f"{d['canary_fraction']:.0%}"
        typer.echo(f"  canary     {d['canary_model_version_id']} ({share} of the traffic)")
    typer.echo(f"  url        POST {d['url']}")
    if d.get("description"):
        typer.echo(f"  about      {d['description']}")
    if d.get("engine_note"):
        typer.secho(f"  note: {d['engine_note']}", fg="yellow")
    typer.echo("Revisions (newest first):")
    for r in d["revisions"]:
        why = f"  — {r['reason']}" if r["reason"] else ""
        typer.echo(
            f"  {r['number']:>3}  {r['at'][:19]}  {r['action']:<8} {r['model_version_id']}{why}"
        )


@deployments_app.command("rollback")
def deployments_rollback(
    name: DeploymentName,
    reason: Reason = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Go back to what the deployment served before its latest change (a new revision)."""
    from narrate.services import deployments

    container, owner = local_container(data_dir, as_user)
    try:
        d = deployments.get_deployment(container, owner, name)
        revisions = d["revisions"]
        if not yes and len(revisions) > 1:
            current, previous = revisions[0], revisions[1]
            typer.confirm(
                f"Roll {name} back from {current['model_version_id']} (revision "
                f"{current['number']}) to {previous['model_version_id']} (revision "
                f"{previous['number']})?",
                abort=True,
            )
        out = deployments.rollback(container, owner, name, reason=reason)
    except NarrateError as exc:
        raise _fail(exc, name) from exc
    finally:
        container.close()
    typer.echo(f"Rolled back {name}: now serves {_version_label(out)}, revision {out['revision']}.")


@deployments_app.command("undeploy")
def deployments_undeploy(
    name: DeploymentName, as_user: AsUser = None, data_dir: DataDir = None
) -> None:
    """Stop serving a deployment (restorable: its revisions and prediction log are kept)."""
    from narrate.services import deployments

    container, owner = local_container(data_dir, as_user)
    try:
        deployments.delete_deployment(container, owner, name)
    except NarrateError as exc:
        raise _fail(exc, name) from exc
    finally:
        container.close()
    typer.echo(f"Undeployed {name}: its URL now answers 404 and its keys stop working.")
    typer.echo(f"Bring it back with: narrate deployments restore {name}")


@deployments_app.command("restore")
def deployments_restore(
    name: DeploymentName, as_user: AsUser = None, data_dir: DataDir = None
) -> None:
    """Serve an undeployed deployment again, as it was when it was undeployed."""
    from narrate.services import deployments

    container, owner = local_container(data_dir, as_user)
    try:
        out = deployments.restore_deployment(container, owner, name)
    except NarrateError as exc:
        raise fail(exc) from exc
    finally:
        container.close()
    typer.echo(f"Restored {name}: serves {_version_label(out)}, revision {out['revision']}.")


# --- predict --------------------------------------------------------------------------------


def predict_command(
    name: DeploymentName,
    row: Annotated[
        list[str] | None,
        typer.Option(
            "--row",
            help="One row as a JSON object of column names and raw values, as in the file "
            "the model was trained on. Repeat --row for more rows, or give a JSON list of "
            "objects.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            help="Score a whole file as a batch job (CSV, TSV, Parquet, Excel, JSON or JSONL), "
            "with a progress bar. Give --out too.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="With --file: where to write the rows with their prediction, probabilities "
            "and flags; Parquet (.parquet) or CSV (.csv), by the extension.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="With --file: replace --out if it exists.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --row: print the full answer as JSON.")
    ] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Predict with a deployment: rows given as JSON (--row), or a whole file (--file)."""
    if (row is None) == (file is None):
        typer.secho("Error: give --row (one or more rows) or --file, not both.", fg="red", err=True)
        raise typer.Exit(code=2)
    if file is not None:
        _predict_file(
            name,
            file,
            out,
            overwrite=overwrite,
            as_json=as_json,
            as_user=as_user,
            data_dir=data_dir,
        )
        return
    try:
        rows = parse_rows(row or [])
    except NarrateError as exc:
        raise fail(exc) from exc
    container, owner = local_container(data_dir, as_user)
    try:
        body = predict_json_rows(container, owner, _username(container, as_user), name, rows)
    except NarrateError as exc:
        index = exc.details.get("row")
        if isinstance(index, int) and not exc.hint and exc.message.startswith(f"rows[{index}]"):
            exc.hint = f"rows[{index}] is row {index + 1} of the rows given with --row."
        raise _fail(exc, name) from exc
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(body, default=str))
    else:
        _print_predictions(body)


def _predict_file(
    name: str,
    file: Path,
    out: Path | None,
    *,
    overwrite: bool,
    as_json: bool,
    as_user: str | None,
    data_dir: Path | None,
) -> None:
    """`narrate predict NAME --file F --out O`: check the paths, score, report."""
    try:
        if as_json:
            raise InvalidInput(
                "--json applies to --row; with --file the rows go to the --out file.",
                details={"parameter": "json"},
            )
        target = _checked_output(file, out, overwrite=overwrite)
    except NarrateError as exc:
        raise fail(exc) from exc
    container, owner = local_container(data_dir, as_user)
    try:
        caller = _username(container, as_user)
        result = score_file(container, owner, caller, name, file, target)
    except NarrateError as exc:
        raise _fail(exc, name) from exc
    finally:
        container.close()
    _print_batch(result, target)


def parse_rows(texts: list[str]) -> list[Any]:
    """The rows given with --row: each a JSON object, or a JSON list of them.

    Args:
        texts: The values of the repeated --row option.

    Returns:
        The rows, in order (checked against the model's signature later).

    Raises:
        InvalidInput: a value that is not valid JSON, or neither an object nor a list.
    """
    rows: list[Any] = []
    for i, text in enumerate(texts, start=1):
        which = f"--row {i}" if len(texts) > 1 else "--row"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{which} is not valid JSON: {exc.msg} at character {exc.pos + 1} of "
                f"{text[:80]!r}.",
                code="invalid_json",
                hint='Quote the row for the shell: --row \'{"age": 41, "plan": "pro"}\'.',
                details={"parameter": "row", "row": i, "position": exc.pos},
            ) from exc
        if isinstance(value, list):
            rows.extend(value)
        elif isinstance(value, dict):
            rows.append(value)
        else:
            kind = "null" if value is None else _JSON_KINDS.get(type(value), "a value")
            raise InvalidInput(
                f"{which} is {kind}, not an object of column values or a list of them.",
                code="invalid_rows",
                details={"parameter": "row", "row": i},
            )
    return rows


def predict_json_rows(
    container: Any, owner: Any, caller: str, name: str, rows: list[Any]
) -> dict[str, Any]:
    """Score rows with a deployment as the predict route does, and log them.

    Returns:
        The answer body: deployment, revision, model version, predictions and flags.

    Raises:
        NotFound: no such deployment for this user, or it is undeployed.
        InvalidInput: too many rows, or a row breaks the model's input contract (naming
            the row and the column).
    """
    from narrate.services.predict import predict_rows, runtime_cache

    limit = container.settings.max_predict_rows
    if len(rows) > limit:
        raise InvalidInput(
            f"{len(rows):,} rows given with --row; at most {limit:,} are scored at once.",
            code="invalid_rows",
            hint="Put them in a file and score it with --file FILE --out OUT.",
            details={"parameter": "row", "limit": limit},
        )
    cache = runtime_cache(container)
    with _prediction_log(container):
        try:
            runtime = cache.runtime(name, owner)
            return predict_rows(container, runtime, rows, caller).body
        finally:
            cache.close()  # a shadow version's answers are logged before the log closes


@contextmanager
def _prediction_log(container: Any) -> Iterator[None]:
    """The prediction log writer for this command; everything is written when it ends."""
    from narrate.services.prediction_log import PredictionLog

    sink = PredictionLog(
        container.db, container.blobs, flush_interval_s=container.settings.prediction_log_flush_s
    )
    container.extras["prediction_log"] = sink
    try:
        yield
    finally:
        container.extras.pop("prediction_log", None)
        sink.close()


def _print_predictions(body: dict[str, Any]) -> None:
    version = body["model_version_id"]
    typer.echo(f"{body['deployment']} (revision {body['revision']}, model version {version})")
    for i, p in enumerate(body["predictions"], start=1):
        shown = p["prediction"]
        interval = p.get("interval")
        if interval is not None:
            level = f"{interval['level']:.0%} " if interval.get("level") else ""
            shown = (
                f"{shown:.6g}  ({level}interval {interval['low']:.6g} to {interval['high']:.6g})"
            )
        arm = f"  [{p['arm']} version]" if p.get("arm") not in (None, "primary") else ""
        typer.echo(f"Row {i}: {shown}{arm}")
        if p.get("probabilities"):
            probs = ", ".join(f"{k} {v:.4f}" for k, v in p["probabilities"].items())
            typer.echo(f"  probabilities: {probs}")
        if p.get("flags"):
            typer.secho(f"  flags: {', '.join(p['flags'])}", fg="yellow")
    if body.get("extra_columns"):
        typer.echo(f"Ignored columns the model does not take: {', '.join(body['extra_columns'])}")
    if body.get("engine_note"):
        typer.secho(f"note: {body['engine_note']}", fg="yellow")


# --- predict --file -------------------------------------------------------------------------


class _Deferred:
    """A job executor that only remembers the job, so this process runs it in a thread
    under a progress bar (:func:`narrate.cli.recipes.run_with_progress`)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str]] = []

    def submit(self, job_id: str, entry: str) -> None:
        """Remember the job; it is run by the caller."""
        self.submitted.append((job_id, entry))

    def shutdown(self) -> None:
        """Nothing runs here, so there is nothing to stop."""


def _checked_output(file: Path, out: Path | None, *, overwrite: bool) -> Path:
    """The --out path of a --file prediction, checked before any work starts."""
    if not file.is_file():
        raise InvalidInput(f"{file} is not a file.", details={"parameter": "file"})
    if out is None:
        raise InvalidInput(
            "Give --out: where to write the scored rows (.parquet or .csv).",
            details={"parameter": "out"},
        )
    if out.suffix.lower() not in OUTPUT_FORMATS:
        raise InvalidInput(
            f"--out {out} has the extension '{out.suffix}'; use .parquet or .csv.",
            details={"parameter": "out"},
        )
    if out.exists() and (not overwrite or out.resolve() == file.resolve()):
        raise InvalidInput(
            f"{out} already exists."
            + ("" if out.resolve() == file.resolve() else " Pass --overwrite to replace it."),
            details={"parameter": "out"},
        )
    if not out.parent.is_dir():
        raise InvalidInput(f"The folder {out.parent} does not exist.", details={"parameter": "out"})
    return out


def score_file(
    container: Any, owner: Any, caller: str, name: str, file: Path, out: Path
) -> dict[str, Any]:
    """Score a file with a deployment as a batch job under a progress bar; write ``out``.

    Args:
        container: Services (without an executor: the job runs in this process).
        owner: The user.
        caller: Who the predictions are logged as.
        name: The deployment.
        file: The rows to score; it is read, never moved or changed.
        out: The output file; Parquet or CSV by its extension.

    Returns:
        The batch job's result (rows, rows_per_s, flagged_rows, seconds ...) and its id.

    Raises:
        NotFound: no such deployment for this user, or it is undeployed.
        NarrateError: the job failed, e.g. the file lacks a column the model needs (the
            message names the file and the column).
    """
    from narrate.services import batch, deployments

    d = deployments.get_deployment(container, owner, name)
    executor = _Deferred()
    container.executor = executor
    with _staged_copy(container, file) as staged:
        batch.start_batch(
            container,
            deployment_id=d["deployment_id"],
            deployment_name=d["name"],
            owner_id=d["owner_id"],
            caller=caller,
            input_path=staged,
            filename=file.name,
            version_id=None,
        )
    job_id, entry = executor.submitted[-1]
    result = run_with_progress(container, job_id, entry)
    _write_output(container, result["output_blob"], out)
    return {**result, "job_id": job_id}


@contextmanager
def _staged_copy(container: Any, file: Path) -> Iterator[Path]:
    """The input as a file the batch job may take over (it moves its input into its own
    folder): a hard link when the data dir is on the same disk, else a copy."""
    from narrate.services.batch import BATCH_PREFIX
    from narrate.services.spool import spool_dir

    # Under the spool with the batch prefix, so a crash's leftover is swept at start-up.
    folder = Path(tempfile.mkdtemp(prefix=BATCH_PREFIX, dir=spool_dir(container.settings)))
    staged = folder / "input.bin"
    try:
        try:
            os.link(file, staged)
        except OSError:  # another file system, or links to others' files are not allowed
            shutil.copyfile(file, staged)
        yield staged
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_output(container: Any, blob: str, out: Path) -> None:
    """Write the job's Parquet output to ``out`` (converted to CSV by its extension),
    through a temporary file in the same folder, so ``out`` is never half written."""
    import polars as pl
    import pyarrow.parquet as pq

    from narrate.services.spool import spool_dir

    # Created like any file the user writes (umask), unlike mkstemp's private 0600.
    temp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        if OUTPUT_FORMATS[out.suffix.lower()] == "parquet":
            container.blobs.copy_to(blob, temp)
        else:
            with tempfile.TemporaryDirectory(dir=spool_dir(container.settings)) as tmp:
                local = container.blobs.copy_to(blob, Path(tmp) / "output.parquet")
                with temp.open("xb") as handle:
                    for i, part in enumerate(pq.ParquetFile(local).iter_batches(65_536)):
                        frame = pl.from_arrow(part)
                        assert isinstance(frame, pl.DataFrame)  # noqa: S101 - a batch is a frame
                        frame.write_csv(handle, include_header=i == 0)
        os.replace(temp, out)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _print_batch(result: dict[str, Any], out: Path) -> None:
    speed = result.get("rows_per_s")
    rate = f" ({speed:,.0f} rows/s)" if speed else ""
    typer.echo(f"Scored {result['rows']:,} rows in {result['seconds']:.2f} s{rate}.")
    if result.get("flagged_rows"):
        typer.secho(
            f"{result['flagged_rows']:,} rows have flags (missing values, unseen categories, "
            "values outside the training range): see the 'flags' column.",
            fg="yellow",
        )
    typer.echo(f"Wrote {out}")
