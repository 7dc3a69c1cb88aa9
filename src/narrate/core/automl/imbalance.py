"""Class-imbalance strategies: choose one, and build the imblearn resampler for it.

Resamplers sit in an ``imblearn`` pipeline, so they run on training folds only: the rows
they synthesise never reach a validation fold or the held-out test rows.
"""

from __future__ import annotations

from typing import Any

from narrate.core.automl.problem import ProblemInfo

__all__ = [
    "BALANCED_SHARE",
    "LARGE_DATA_ROWS",
    "PROBABILITY_METRICS",
    "RESAMPLERS",
    "choose_imbalance_strategy",
    "make_resampler",
]

RESAMPLERS = ("smote", "adasyn", "borderline_smote", "random_under")
LARGE_DATA_ROWS = 100_000


#: Minority share at or above which ``auto`` leaves the classes as they are.
BALANCED_SHARE = 0.15
#: Metrics that judge predicted probabilities or their ranking, not hard labels.
PROBABILITY_METRICS = frozenset({"roc_auc", "pr_auc", "log_loss", "roc_auc_ovr"})


def choose_imbalance_strategy(
    problem: ProblemInfo, requested: str, metric: str | None = None
) -> tuple[str, str]:
    """Pick the imbalance strategy and say why.

    With ``auto``, a metric that judges probabilities or their ranking (ROC AUC, PR AUC,
    log loss) keeps the classes as they are: synthetic rows and class weights shift the
    predicted probabilities away from the real class frequencies (worse log loss and
    calibration) and do not improve the ranking a GBDT learns, while costing fit time.
    The binary decision threshold is tuned for the rare class instead. Metrics on hard
    labels (F1, accuracy, balanced accuracy) are helped by balancing, chosen by share.

    Args:
        problem: The detected problem.
        requested: The configured strategy (``auto`` lets Narrate choose).
        metric: The ranking metric's name (None: judged by the minority share alone).

    Returns:
        The strategy and a plain-language reason.
    """
    if problem.task == "regression":
        return "none", "regression has no classes to balance"
    share = problem.minority_share or 0.0
    if requested != "auto":
        return requested, f"you chose {requested}"
    if metric in PROBABILITY_METRICS and share < BALANCED_SHARE:
        after = (
            "; the decision threshold is tuned for the rare class instead"
            if problem.task == "binary"
            else ""
        )
        return "none", (
            f"the smallest class is {share:.1%} of rows, but the {metric.replace('_', ' ')} "
            "score judges predicted probabilities, which resampling or class weights would "
            f"distort, so the classes are learned as they are{after}"
        )
    if share >= BALANCED_SHARE:
        # Re-weighting a mild imbalance distorts the predicted probabilities (worse log
        # loss and calibration) for little gain in ranking.
        return "none", (
            f"the smallest class is {share:.0%} of rows, balanced enough to learn as is"
        )
    if share >= 0.1:
        return "class_weight", (
            f"the smallest class is {share:.0%} of rows, so rows are weighted by class instead "
            "of resampled"
        )
    if problem.n_rows > LARGE_DATA_ROWS:
        return "random_under", (
            f"the smallest class is {share:.1%} of {problem.n_rows:,} rows, so the larger "
            "classes are under-sampled in each training fold"
        )
    return "smote", (
        f"the smallest class is only {share:.1%} of rows, so SMOTE synthesises minority rows "
        "inside each training fold"
    )


def make_resampler(strategy: str, *, seed: int, min_class_rows: int) -> Any:
    """Build the resampler for a strategy.

    Args:
        strategy: One of :data:`RESAMPLERS`.
        seed: Random state.
        min_class_rows: Rows of the smallest class in a training fold (caps neighbours).

    Returns:
        An unfitted imblearn sampler.

    Raises:
        ValueError: The strategy is not a resampler.
    """
    # Imported here: a saved model that needs no sampler loads without imbalanced-learn.
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE
    from imblearn.under_sampling import RandomUnderSampler

    neighbours = max(1, min(5, min_class_rows - 1))
    if strategy == "smote":
        return SMOTE(k_neighbors=neighbours, random_state=seed)
    if strategy == "adasyn":
        return ADASYN(n_neighbors=neighbours, random_state=seed)
    if strategy == "borderline_smote":
        return BorderlineSMOTE(
            k_neighbors=neighbours, m_neighbors=max(2, neighbours), random_state=seed
        )
    if strategy == "random_under":
        return RandomUnderSampler(random_state=seed)
    raise ValueError(f"{strategy!r} is not a resampling strategy")
