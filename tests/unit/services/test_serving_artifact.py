"""Storing a model's serving copy never fails the training that produced the model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from narrate.bootstrap import Container
from narrate.core.automl import CandidateSpec, build_pipeline
from narrate.core.serving import load_serving
from narrate.services.training import serving_artifact


def _credit() -> pd.DataFrame:
    return pd.read_csv(str(resources.files("narrate") / "samples" / "credit_data.csv"))


def test_a_serving_copy_is_stored_in_the_blob_store(container: Container, tmp_path: Path) -> None:
    df = _credit()
    X, y = df.drop(columns="Status"), df["Status"]
    model = build_pipeline(CandidateSpec("linear", {}), "binary", seed=0).fit(X, y)
    stored = serving_artifact(container, model, X.head(100), "binary")
    assert stored["available"] is True and stored["format"] == "narrate-serving/1"
    path = container.blobs.copy_to(stored["blob"], tmp_path / "m.serving")
    assert path.stat().st_size == stored["size_bytes"]
    assert list(load_serving(path).predict(X.head(5))) == list(model.predict(X.head(5)))


def test_an_export_that_breaks_is_recorded_not_raised(container: Container) -> None:
    stored = serving_artifact(container, object(), _credit().head(10), "binary")
    assert stored["available"] is False
    assert "the export failed (AttributeError" in stored["reason"]
