"""`narrate explain`: why a model version (or a deployment) answers what it does for a row.

Works on the local data dir through the same service as ``POST .../explain``: the
prediction, the one-sentence narrative and each raw column's contribution, printed as a
waterfall from the base value to the row's output (largest moves first). Nothing is
written to the prediction log: an explanation is a question about the model.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from narrate.cli import DataDir, fail
from narrate.cli.datasets import AsUser, local_container
from narrate.cli.deploy import parse_rows
from narrate.errors import InvalidInput, NarrateError

__all__ = ["explain_command"]

#: What the explained output is, by the answer's scale.
_SCALES = {
    "log_odds": "log-odds of {cls}",
    "margin": "margin (softmax logit) of {cls}",
    "probability": "probability of {cls}",
    "value": "predicted value",
    "log1p_value": "log(1 + predicted value)",
}


def explain_command(
    model_version_id: Annotated[
        str | None,
        typer.Argument(
            help="Model version to explain with (see `narrate models show MODEL_ID`); leave "
            "out with --deployment.",
            show_default=False,
        ),
    ] = None,
    row: Annotated[
        list[str] | None,
        typer.Option(
            "--row",
            help="One row as a JSON object of column names and raw values, as in the file "
            "the model was trained on. Repeat --row for more rows (up to 100), or give a "
            "JSON list of objects.",
            show_default=False,
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            help="Explain with the version this deployment serves instead of a model version.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full answer as JSON.")] = False,
    as_user: AsUser = None,
    data_dir: DataDir = None,
) -> None:
    """Explain rows: the prediction, a plain sentence, and each column's contribution."""
    try:
        if (model_version_id is None) == (deployment is None):
            raise InvalidInput(
                "Give a MODEL_VERSION_ID or --deployment NAME (one of them).",
                code="invalid_input",
                details={"parameter": "model_version_id"},
            )
        if not row:
            raise InvalidInput(
                "Give the row to explain with --row '{\"column\": value, ...}'.",
                code="invalid_rows",
                details={"parameter": "row"},
            )
        rows = parse_rows(row)
    except NarrateError as exc:
        raise fail(exc) from exc
    container, owner = local_container(data_dir, as_user)
    try:
        body = _explain(container, owner, model_version_id, deployment, rows)
    except NarrateError as exc:
        index = exc.details.get("row")
        if isinstance(index, int) and not exc.hint and exc.message.startswith(f"rows[{index}]"):
            exc.hint = f"rows[{index}] is row {index + 1} of the rows given with --row."
        raise fail(exc) from exc
    finally:
        container.close()
    if as_json:
        typer.echo(json.dumps(body, default=str))
    else:
        _print(body)


def _explain(
    container: Any, owner: Any, mv_id: str | None, deployment: str | None, rows: list[Any]
) -> dict[str, Any]:
    from narrate.services import explain

    if mv_id is not None:
        return explain.explain_version(container, owner, mv_id, rows)
    from narrate.services.predict import runtime_cache

    cache = runtime_cache(container)
    try:
        return explain.explain_deployment(container, cache.runtime(str(deployment), owner), rows)
    finally:
        cache.close()


def waterfall(explanation: dict[str, Any]) -> list[str]:
    """The contributions as lines from the base value to the output, largest move first.

    Args:
        explanation: One item of the answer's ``explanations``.

    Returns:
        ``base``, one line per column (sign, size, running total, column), ``output``.
    """
    base, output = float(explanation["base_value"]), float(explanation["output"])
    ordered = sorted(explanation["contributions"].items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    width = max((len(f"{abs(v):.4f}") for _, v in ordered), default=6)
    lines = [f"  {'base':>{width + 2}}  {base:>10.4f}"]
    total = base
    for column, value in ordered:
        total += value
        sign = "-" if value < 0 else "+"
        lines.append(f"  {sign} {abs(value):>{width}.4f}  {total:>10.4f}  {column}")
    lines.append(f"  {'output':>{width + 2}}  {output:>10.4f}")
    return lines


def _print(body: dict[str, Any]) -> None:
    where = (
        f"{body['deployment']} (revision {body['revision']}, model version "
        f"{body['model_version_id']})"
        if "deployment" in body
        else f"Model version {body['model_version_id']}"
    )
    typer.echo(f"{where}; method {body['method']}")
    for i, e in enumerate(body["explanations"], start=1):
        typer.echo(f"Row {i}: {e['prediction']}")
        typer.echo(f"  {e['narrative']['text']}")
        cls = f"'{e['explained_class']}'" if e["explained_class"] is not None else ""
        scale = _SCALES.get(body["scale"], body["scale"]).format(cls=cls)
        typer.echo(f"  Contributions to the {scale}, from the base value to this row:")
        for line in waterfall(e):
            typer.echo(line)
