"""Plotly chart specs (plain dicts) for pages; rendered client-side by static/narrate.js."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

__all__ = ["profile_charts"]

_ACCENT = "#2f6fed"


def _histogram(col: dict[str, Any]) -> dict[str, Any] | None:
    hist = col.get("histogram")
    if not hist or not hist.get("counts"):
        return None
    edges = hist["edges"]
    bar: dict[str, Any]
    if all(isinstance(e, int | float) for e in edges):
        bar = {
            "x": [(a + b) / 2 for a, b in pairwise(edges)],
            "width": [b - a for a, b in pairwise(edges)],
        }
    else:  # dates and times arrive as ISO strings: label each bin by its start
        bar = {"x": [str(a) for a, _ in pairwise(edges)]}
    return {
        "data": [
            {
                "type": "bar",
                **bar,
                "y": hist["counts"],
                "marker": {"color": _ACCENT},
                "hovertemplate": "%{x}: %{y} rows<extra></extra>",
            }
        ],
        "layout": {"height": 220, "bargap": 0.02, "xaxis": {"title": col["name"]}},
    }


def _top_values(col: dict[str, Any]) -> dict[str, Any] | None:
    top = col.get("top_values") or []
    if not top:
        return None
    labels = [str(t["value"]) for t in top][::-1]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": labels,
                "x": [t["count"] for t in top][::-1],
                "marker": {"color": _ACCENT},
                "hovertemplate": "%{y}: %{x} rows<extra></extra>",
            }
        ],
        "layout": {"height": 60 + 22 * len(labels), "margin": {"l": 120}},
    }


def _heatmap(names: list[str], matrix: list[list[Any]], title: str, zmin: float) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "heatmap",
                "x": names,
                "y": names,
                "z": matrix,
                "zmin": zmin,
                "zmax": 1,
                "colorscale": "RdBu" if zmin < 0 else "Blues",
                "reversescale": zmin < 0,
                "hovertemplate": "%{y} × %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": title},
            "height": 140 + 26 * len(names),
            "margin": {"l": 140, "b": 120},
        },
    }


def _missing(matrix: dict[str, Any]) -> dict[str, Any] | None:
    shares = matrix.get("shares") or []
    if not shares or not any(any(v for v in row) for row in shares):
        return None
    return {
        "data": [
            {
                "type": "heatmap",
                "x": matrix["columns"],
                "z": shares,
                "zmin": 0,
                "zmax": 1,
                "colorscale": [[0, "#f3f6ff"], [1, "#c53030"]],
                "hovertemplate": "%{x}, row block %{y}: %{z:.0%} missing<extra></extra>",
            }
        ],
        "layout": {
            "height": 320,
            "yaxis": {"title": "rows (top to bottom)", "autorange": "reversed"},
            "margin": {"b": 120},
        },
    }


def profile_charts(profile: dict[str, Any]) -> dict[str, Any]:
    """Chart specs for the Clean page: per-column charts, correlations, missing values."""
    per_column: dict[str, dict[str, Any]] = {}
    for name, col in (profile.get("columns") or {}).items():
        spec = _histogram(col) if col.get("histogram") else _top_values(col)
        if spec is not None:
            per_column[name] = spec
    out: dict[str, Any] = {"columns": per_column}
    corr = profile.get("correlations") or {}
    if corr.get("pearson") and len(corr.get("columns", [])) > 1:
        out["pearson"] = _heatmap(corr["columns"], corr["pearson"], "Pearson correlation", -1)
    cramers = corr.get("cramers_v") or {}
    if isinstance(cramers, dict) and len(cramers.get("columns", [])) > 1:
        out["cramers_v"] = _heatmap(
            cramers["columns"], cramers["matrix"], "Cramér's V (categories)", 0
        )
    missing = _missing(profile.get("missing_matrix") or {})
    if missing is not None:
        out["missing"] = missing
    return out
