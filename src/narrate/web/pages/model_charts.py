"""Plotly chart specs (plain dicts) for the Evaluate page; rendered by static/narrate.js."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

__all__ = ["comparison_roc", "evaluation_charts"]

_ACCENT = "#2f6fed"
_GREY = "#9aa8c2"
_HEIGHT = 320
#: One colour per class or per compared model (cycled past ten).
_PALETTE = (
    "#2f6fed",
    "#e8590c",
    "#2b8a3e",
    "#c2255c",
    "#7048e8",
    "#0c8599",
    "#e67700",
    "#5c940d",
    "#862e9c",
    "#495057",
)


def _colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _inside_legend(corner: str) -> dict[str, Any]:
    """A vertical legend in an empty corner of the plot: many curves' names wrap below it."""
    left = corner.endswith("left")
    return {
        "orientation": "v",
        "x": 0.02 if left else 0.98,
        "xanchor": "left" if left else "right",
        "y": 0.02,
        "yanchor": "bottom",
        "bgcolor": "rgba(255,255,255,0.8)",
        "font": {"size": 11},
    }


def _diagonal(name: str) -> dict[str, Any]:
    """The dashed y = x reference line of a unit square."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [0, 1],
        "y": [0, 1],
        "name": name,
        "line": {"dash": "dash", "color": _GREY},
        "hoverinfo": "skip",
    }


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "height": _HEIGHT,
        "xaxis": {"title": {"text": x}},
        "yaxis": {"title": {"text": y}},
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def _roc(roc: dict[str, Any], auc: float | None) -> dict[str, Any]:
    label = f"model (AUC {auc:.3f})" if auc is not None else "model"
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": roc["fpr"],
                "y": roc["tpr"],
                "name": label,
                "line": {"color": _ACCENT},
                "hovertemplate": "FPR %{x:.2f}, TPR %{y:.2f}<extra></extra>",
            },
            _diagonal("guessing"),
        ],
        "layout": _layout("ROC curve", "False positive rate", "True positive rate"),
    }


def _pr(pr: dict[str, Any], base_rate: float | None) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": pr["recall"],
            "y": pr["precision"],
            "name": "model",
            "line": {"color": _ACCENT},
            "hovertemplate": "recall %{x:.2f}, precision %{y:.2f}<extra></extra>",
        }
    ]
    if base_rate is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [0, 1],
                "y": [base_rate, base_rate],
                "name": "guessing",
                "line": {"dash": "dash", "color": _GREY},
                "hoverinfo": "skip",
            }
        )
    return {"data": data, "layout": _layout("Precision–recall curve", "Recall", "Precision")}


def _confusion(cm: dict[str, Any]) -> dict[str, Any]:
    labels = [str(v) for v in cm["labels"]]
    matrix = cm["matrix"]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": labels,
                "y": labels,
                "z": matrix,
                "text": matrix,
                "texttemplate": "%{text}",
                "colorscale": [[0, "#f3f6ff"], [1, _ACCENT]],
                "showscale": False,
                "hovertemplate": "actual %{y}, predicted %{x}: %{z} rows<extra></extra>",
            }
        ],
        "layout": _layout(
            "Confusion matrix",
            "Predicted",
            "Actual",
            yaxis={
                "title": {"text": "Actual"},
                "autorange": "reversed",
                "type": "category",
                "automargin": True,
            },
            xaxis={"title": {"text": "Predicted"}, "type": "category"},
        ),
    }


def _calibration(cal: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": cal["predicted"],
                "y": cal["observed"],
                "name": "model",
                "line": {"color": _ACCENT},
                "hovertemplate": "predicted %{x:.2f}, observed %{y:.2f}<extra></extra>",
            },
            _diagonal("perfectly calibrated"),
        ],
        "layout": _layout("Calibration", "Mean predicted probability", "Observed share"),
    }


def _gain(gain: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [0, *gain["fraction"]],
                "y": [0, *gain["gain"]],
                "name": "cumulative gain",
                "line": {"color": _ACCENT},
                "hovertemplate": "top %{x:.0%} of rows find %{y:.0%} of positives<extra></extra>",
            },
            {
                "type": "bar",
                "x": gain["fraction"],
                "y": gain["lift"],
                "name": "lift",
                "yaxis": "y2",
                "opacity": 0.35,
                "marker": {"color": _GREY},
                "width": 0.06,
                "hovertemplate": "top %{x:.0%}: lift %{y:.2f}<extra></extra>",
            },
            _diagonal("guessing"),
        ],
        "layout": _layout(
            "Gain and lift",
            "Share of rows, highest scores first",
            "Share of positives found",
            yaxis2={
                "title": {"text": "Lift"},
                "overlaying": "y",
                "side": "right",
                "tickmode": "auto",
                "range": [0, max(gain["lift"], default=1) * 1.1],
                "showgrid": False,
            },
            margin={"t": 30, "r": 50, "b": 40, "l": 50},
        ),
    }


def _predicted_vs_actual(pva: dict[str, Any], target: str) -> dict[str, Any]:
    values = [v for v in (*pva["actual"], *pva["predicted"]) if v is not None]
    low, high = (min(values), max(values)) if values else (0, 1)
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": pva["actual"],
                "y": pva["predicted"],
                "name": "rows",
                "marker": {"color": _ACCENT, "opacity": 0.6},
                "hovertemplate": "actual %{x}, predicted %{y:.3g}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines",
                "x": [low, high],
                "y": [low, high],
                "name": "perfect",
                "line": {"dash": "dash", "color": _GREY},
                "hoverinfo": "skip",
            },
        ],
        "layout": _layout("Predicted vs actual", f"Actual {target}", f"Predicted {target}"),
    }


def _residuals(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "markers",
                "x": res["predicted"],
                "y": res["residual"],
                "marker": {"color": _ACCENT, "opacity": 0.6},
                "hovertemplate": "predicted %{x:.3g}, residual %{y:.3g}<extra></extra>",
            }
        ],
        "layout": _layout(
            "Residuals vs predicted",
            "Predicted",
            "Actual − predicted",
            shapes=[
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": 0,
                    "y1": 0,
                    "line": {"dash": "dash", "color": _GREY},
                }
            ],
        ),
    }


def _residual_histogram(hist: dict[str, Any]) -> dict[str, Any]:
    edges = hist["edges"]
    return {
        "data": [
            {
                "type": "bar",
                "x": [(a + b) / 2 for a, b in pairwise(edges)],
                "y": hist["counts"],
                "width": [b - a for a, b in pairwise(edges)],
                "marker": {"color": _ACCENT},
                "hovertemplate": "residual ≈ %{x:.3g}: %{y} rows<extra></extra>",
            }
        ],
        "layout": _layout("Residual distribution", "Actual − predicted", "Rows", bargap=0.02),
    }


def _roc_ovr(roc: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": curve["fpr"],
            "y": curve["tpr"],
            "name": f"{label} (AUC {curve['auc']:.3f})"
            if isinstance(curve.get("auc"), int | float)
            else str(label),
            "line": {"color": _colour(i)},
            "hovertemplate": f"{label}: FPR %{{x:.2f}}, TPR %{{y:.2f}}<extra></extra>",
        }
        for i, (label, curve) in enumerate(roc.items())
    ]
    data.append(_diagonal("guessing"))
    return {
        "data": data,
        "layout": _layout(
            "ROC curve per class (one vs rest)",
            "False positive rate",
            "True positive rate",
            legend=_inside_legend("bottom right"),
        ),
    }


def _pr_ovr(pr: dict[str, Any]) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for i, (label, curve) in enumerate(pr.items()):
        ap = curve.get("average_precision")
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": curve["recall"],
                "y": curve["precision"],
                "name": f"{label} (AP {ap:.3f})" if isinstance(ap, int | float) else str(label),
                "line": {"color": _colour(i)},
                "hovertemplate": f"{label}: recall %{{x:.2f}}, precision %{{y:.2f}}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "Precision–recall per class (one vs rest)",
            "Recall",
            "Precision",
            legend=_inside_legend("bottom left"),
        ),
    }


def comparison_roc(named: list[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """Overlaid ROC curves of compared binary models (None when fewer than two have one).

    Args:
        named: ``(label, evaluation)`` pairs in column order.
    """
    data: list[dict[str, Any]] = []
    for i, (label, evaluation) in enumerate(named):
        roc = (evaluation.get("curves") or {}).get("roc")
        if evaluation.get("task") != "binary" or not roc:
            continue
        auc = _metric_value(evaluation, "roc_auc")
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": roc["fpr"],
                "y": roc["tpr"],
                "name": f"{label} (AUC {auc:.3f})" if auc is not None else label,
                "line": {"color": _colour(i)},
                "hovertemplate": f"{label}: FPR %{{x:.2f}}, TPR %{{y:.2f}}<extra></extra>",
            }
        )
    if len(data) < 2:
        return None
    data.append(_diagonal("guessing"))
    return {
        "data": data,
        "layout": _layout(
            "ROC curves compared",
            "False positive rate",
            "True positive rate",
            legend=_inside_legend("bottom right"),
        ),
    }


def _metric_value(evaluation: dict[str, Any], name: str) -> float | None:
    entry = (evaluation.get("metrics") or {}).get(name) or {}
    value = entry.get("value")
    return float(value) if isinstance(value, int | float) else None


def _classification(evaluation: dict[str, Any], curves: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if curves.get("roc"):
        out["roc"] = _roc(curves["roc"], _metric_value(evaluation, "roc_auc"))
    if curves.get("roc_ovr"):
        out["roc_ovr"] = _roc_ovr(curves["roc_ovr"])
    if curves.get("pr"):
        base = (evaluation.get("baseline") or {}).get("pr_auc")
        out["pr"] = _pr(curves["pr"], float(base) if isinstance(base, int | float) else None)
    if curves.get("pr_ovr"):
        out["pr_ovr"] = _pr_ovr(curves["pr_ovr"])
    if evaluation.get("confusion_matrix"):
        out["confusion"] = _confusion(evaluation["confusion_matrix"])
    if curves.get("calibration"):
        out["calibration"] = _calibration(curves["calibration"])
        if curves["calibration"].get("kind") == "predicted_class":
            out["calibration"]["layout"] = _layout(
                "Calibration of the predicted class",
                "Probability of the predicted class",
                "Share of predictions that are right",
            )
    if curves.get("gain"):
        out["gain"] = _gain(curves["gain"])
    return out


def _regression(evaluation: dict[str, Any], curves: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if curves.get("predicted_vs_actual"):
        target = str(evaluation.get("target") or "target")
        out["predicted_vs_actual"] = _predicted_vs_actual(curves["predicted_vs_actual"], target)
    if curves.get("residuals"):
        out["residuals"] = _residuals(curves["residuals"])
    if curves.get("residual_histogram"):
        out["residual_histogram"] = _residual_histogram(curves["residual_histogram"])
    return out


def evaluation_charts(evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """Chart specs for one evaluation, keyed by chart name, in display order.

    Classification: ``roc`` (binary) or ``roc_ovr`` (multiclass, one curve per class),
    ``pr`` or ``pr_ovr``, ``confusion``, ``calibration``, ``gain`` (each only when the
    evaluation has the data). Regression: ``predicted_vs_actual``, ``residuals``,
    ``residual_histogram``.
    """
    if not evaluation:
        return {}
    curves = evaluation.get("curves") or {}
    if evaluation.get("task") == "regression":
        return _regression(evaluation, curves)
    return _classification(evaluation, curves)
