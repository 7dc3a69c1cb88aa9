"""The narrative of live performance: how the newest window scores against the baseline.

Deterministic and grounded like the drift narrative: every number in the text is one of
the returned facts, each naming where in the response it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["describe_performance"]

_NAMES = {
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "f1": "F1",
    "macro_f1": "macro F1",
    "log_loss": "log loss",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}


def describe_performance(
    *,
    primary: str,
    baseline: Mapping[str, float],
    latest: Mapping[str, Any] | None,
    latest_index: int | None,
    labelled: int,
    drop: float,
    min_rows: int,
    deployment: str = "{name}",
) -> dict[str, Any]:
    """Say how the newest complete window with labelled cases compares with the baseline.

    Args:
        primary: The metric degradation is judged on.
        baseline: The deployed version's holdout metrics.
        latest: The newest complete window (``start``, ``n``, ``metrics``), or None.
        latest_index: Its index in ``windows``.
        labelled: Labelled predictions over all windows.
        drop: The relative drop that counts as degraded.
        min_rows: Labelled cases a window needs before it is judged.
        deployment: The deployment's name (for the route the text points to).

    Returns:
        ``{"text", "facts"}``.
    """
    facts: list[dict[str, Any]] = []

    def fact(name: str, value: float, source: str) -> None:
        facts.append({"name": name, "value": value, "source": source})

    fact("labelled predictions", labelled, "windows[].n")
    if latest is None or latest_index is None or not latest["n"]:
        text = (
            f"{labelled:,} logged predictions in this range have an actual, none of them "
            "in the newest complete window. Post actuals to "
            f"POST /api/v1/deployments/{deployment}/actuals to measure live performance."
        )
        return {"text": text, "facts": facts}
    label = _NAMES.get(primary, primary)
    n = int(latest["n"])
    current = latest["metrics"].get(primary)
    where = f"windows[{latest_index}]"
    fact("labelled in the newest window", n, f"{where}.n")
    parts = [f"The newest complete window holds {n:,} labelled predictions"]
    if current is None:
        parts.append(f"; {label} is not defined for them (one class only).")
        return {"text": "".join(parts), "facts": facts}
    fact(f"{primary} in the newest window", round(current, 4), f"{where}.metrics.{primary}")
    parts.append(f" with {label} {current:.4g}")
    base = baseline.get(primary)
    if base is None:
        parts.append(" (the deployed version has no holdout value to compare with).")
        return {"text": "".join(parts), "facts": facts}
    fact(f"baseline {primary}", round(base, 4), f"baseline.{primary}")
    parts.append(f" against {base:.4g} in the holdout evaluation")
    worse = (current - base) if primary in {"log_loss", "rmse", "mae"} else (base - current)
    relative = worse / abs(base) if base else 0.0
    fact("relative drop (%)", round(relative * 100, 1), "degradation.relative_drop")
    fact("allowed drop (%)", round(drop * 100, 1), "degradation.threshold")
    if n < min_rows:
        fact("labelled cases needed", min_rows, "settings.performance_min_rows")
        parts.append(
            f" ({relative * 100:.1f}% worse); {min_rows:,} labelled cases are needed "
            "before a drop is called a degradation."
        )
    elif relative > drop:
        parts.append(
            f": {relative * 100:.1f}% worse, more than the {drop * 100:.1f}% allowed. "
            "The model is degraded; consider retraining on recent labelled data."
        )
    else:
        parts.append(
            f": {relative * 100:.1f}% worse, within the {drop * 100:.1f}% allowed "
            "(negative means better)."
        )
    return {"text": "".join(parts), "facts": facts}
