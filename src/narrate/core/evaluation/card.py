"""Model cards in HTML or Markdown, rendered from Jinja2 templates kept in this package."""

from __future__ import annotations

from typing import Any, Literal

import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, PackageLoader, StrictUndefined

from narrate.errors import InvalidInput

__all__ = ["render_model_card"]


# Markdown renderers pass raw HTML through (CommonMark does), so user text in a Markdown
# card (model and class names, column names, warnings) must not open a tag or a link there.
# A backslash makes the next punctuation literal; the backslash itself goes first.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in "\\<>[]"})


def _markdown_text(value: Any) -> str:
    # Everything printed, not only strings: a dict of segment values prints its keys too.
    return str(value).translate(_MARKDOWN_ESCAPES)


def _environment(html: bool) -> Environment:
    return Environment(
        loader=PackageLoader("narrate.core.evaluation", "templates"),
        # HTML output is escaped; Markdown output has its HTML-significant characters
        # backslash-escaped instead (entities would show as "&lt;" in the plain text).
        autoescape=html,  # noqa: S701
        finalize=None if html else _markdown_text,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _axes(title: str, x: str, y: str) -> dict[str, str]:
    return {"title": title, "xaxis_title": x, "yaxis_title": y}


def _figures(evaluation: dict[str, Any]) -> list[go.Figure]:
    curves = evaluation.get("curves") or {}
    figures = []
    if "roc" in curves:
        roc = curves["roc"]
        figures.append(
            go.Figure(
                go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines"),
                layout=_axes("ROC curve", "false positive rate", "true positive rate"),
            )
        )
    if curves.get("roc_ovr"):
        figures.append(
            go.Figure(
                [
                    go.Scatter(
                        x=c["fpr"], y=c["tpr"], mode="lines", name=f"{label} (AUC {c['auc']:.3f})"
                    )
                    for label, c in curves["roc_ovr"].items()
                ],
                layout=_axes(
                    "ROC curve per class (one vs rest)", "false positive rate", "true positive rate"
                ),
            )
        )
    if curves.get("calibration"):
        cal = curves["calibration"]
        is_top = cal.get("kind") == "predicted_class"
        figures.append(
            go.Figure(
                go.Scatter(x=cal["predicted"], y=cal["observed"], mode="lines+markers"),
                layout=_axes(
                    "Calibration of the predicted class" if is_top else "Calibration",
                    "predicted",
                    "observed",
                ),
            )
        )
    if "predicted_vs_actual" in curves:
        pva = curves["predicted_vs_actual"]
        figures.append(
            go.Figure(
                go.Scatter(x=pva["actual"], y=pva["predicted"], mode="markers"),
                layout=_axes("Predicted vs actual", "actual", "predicted"),
            )
        )
    return figures


def _charts_html(evaluation: dict[str, Any]) -> list[str]:
    """Plotly divs; the first embeds plotly.js itself (no CDN), the others reuse it."""
    return [
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=(i == 0),
            default_width="100%",
            default_height="360px",
        )
        for i, fig in enumerate(_figures(evaluation))
    ]


def render_model_card(context: dict[str, Any], *, fmt: Literal["html", "md"] = "html") -> str:
    """Render a model card.

    Args:
        context: ``{"title", "result"}`` (``TrainResult.to_dict()``), ``"evaluation"``
            (from :func:`evaluate`), optional ``"data_summary"`` (dict) and ``"narrative"``.
        fmt: ``html`` (self-contained, charts embedded) or ``md``.

    Returns:
        The card text.

    Raises:
        InvalidInput: Unknown format or missing context keys.
    """
    if fmt not in ("html", "md"):
        raise InvalidInput(
            f"Model card format {fmt!r} is not supported; use html or md.",
            details={"parameter": "fmt"},
        )
    missing = [k for k in ("result", "evaluation") if k not in context]
    if missing:
        raise InvalidInput(
            f"Model card context is missing {', '.join(missing)}.", details={"missing": missing}
        )
    evaluation = context["evaluation"]
    values = {
        "title": context.get("title") or f"Model card: {context['result']['problem']['target']}",
        "result": context["result"],
        "evaluation": evaluation,
        "data_summary": context.get("data_summary") or {},
        "narrative": context.get("narrative") or "",
        "charts": _charts_html(evaluation) if fmt == "html" else [],
    }
    template = _environment(fmt == "html").get_template(f"model_card.{fmt}.j2")
    return template.render(**values)
