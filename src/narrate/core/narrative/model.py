"""Plain-language description of a trained and evaluated model (deterministic, no LLM)."""

from __future__ import annotations

from typing import Any

__all__ = ["describe_model"]

_NAMES = {
    "baseline": "a naive baseline",
    "linear": "a linear model",
    "random_forest": "Random Forest",
    "extra_trees": "Extra Trees",
    "hist_gradient_boosting": "Histogram Gradient Boosting",
    "lightgbm": "LightGBM",
    "xgboost": "XGBoost",
    "ensemble:soft_voting": "a voting ensemble",
    "ensemble:stacking": "a stacked ensemble",
    "ensemble:blending": "a blended ensemble",
}
_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "rmse": "RMSE",
    "r2": "R²",
    "log_loss": "log loss",
    "macro_f1": "macro F1",
    "mae": "MAE",
}
_LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "mape", "brier"}
_SMALL_DATA = 500
_GAP = 0.05


def _fmt(value: float) -> str:
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def _headline(result: dict[str, Any], evaluation: dict[str, Any]) -> str:
    family = str(result["leaderboard"][0]["family"]) if result.get("leaderboard") else "model"
    name = _NAMES.get(family, family)
    metric = evaluation["primary_metric"]
    entry = evaluation["metrics"][metric]
    interval = ""
    if entry.get("ci_low") is not None and entry.get("ci_high") is not None:
        interval = f" ({_fmt(entry['ci_low'])}–{_fmt(entry['ci_high'])})"
    text = (
        f"The best model ({name}) predicts {evaluation['target']} with "
        f"{_LABELS.get(metric, metric)} {_fmt(entry['value'])}{interval} on "
        f"{evaluation['n_rows']:,} held-out rows"
    )
    lift = evaluation.get("lift", {}).get(metric)
    if lift is not None:
        word = "better" if lift > 0 else "worse"
        text += f", {_fmt(abs(lift))} {word} than guessing"
    return text + "."


def _overfitting(result: dict[str, Any], evaluation: dict[str, Any]) -> str | None:
    metric = result.get("metric")
    board = result.get("leaderboard") or []
    if not board or metric not in evaluation["metrics"]:
        return None
    cv, holdout = board[0]["cv_score_mean"], evaluation["metrics"][metric]["value"]
    if cv is None or holdout is None:
        return None
    worse = holdout - cv if metric in _LOWER_IS_BETTER else cv - holdout
    relative = worse / max(abs(cv), 1e-9)
    bounded = metric not in ("rmse", "mae", "mape")
    if relative > _GAP and (not bounded or worse > _GAP / 2):
        return (
            f"It scored {_fmt(cv)} in cross-validation but {_fmt(holdout)} on held-out rows, "
            "so it may be overfitting; expect results closer to the held-out figure."
        )
    return None


def describe_model(result: dict[str, Any], evaluation: dict[str, Any]) -> str:
    """Describe a model's quality and its caveats in plain language.

    Args:
        result: ``TrainResult.to_dict()``.
        evaluation: Output of :func:`narrate.core.evaluation.evaluate` on the holdout rows.

    Returns:
        A short paragraph; the same inputs always give the same text.
    """
    sentences = [_headline(result, evaluation)]
    threshold = result.get("threshold")
    if threshold:
        sentences.append(
            f"Rows are flagged as '{evaluation.get('positive_class')}' when their "
            f"probability is at least {threshold['threshold']:.2f}, because "
            f"{threshold['reason']}."
        )
    caveats = []
    n_rows = int(result.get("n_train", 0)) + int(result.get("n_holdout", 0))
    if n_rows < _SMALL_DATA:
        caveats.append(f"the data is small ({n_rows:,} rows), so the figures are uncertain")
    share = result.get("problem", {}).get("minority_share")
    if share is not None and share < 0.1:
        caveats.append(
            f"the smallest class is only {share:.1%} of rows, so look at precision "
            "and recall, not accuracy"
        )
    leaks = [w["column"] for w in result.get("feature_warnings", []) if w["kind"] == "leakage"]
    if leaks:
        caveats.append(
            "these columns predict the target suspiciously well and may leak it: "
            + ", ".join(f"'{c}'" for c in leaks)
        )
    overfit = _overfitting(result, evaluation)
    if overfit:
        sentences.append(overfit)
    if caveats:
        sentences.append("Caveats: " + "; ".join(caveats) + ".")
    for column, entry in (evaluation.get("fairness") or {}).items():
        sentences.extend(entry.get("flags", []) or [f"No large gaps were found across '{column}'."])
    if result.get("cancelled"):
        sentences.append("Training was stopped early, so a better model may exist.")
    if result.get("refit_full"):
        sentences.append(
            "The saved model was then refitted on all labelled rows, the held-out ones "
            "included, with the same settings; the figures above come from before that."
        )
    return " ".join(sentences)
