"""An MLflow pyfunc model (MLflow "models from code") around a model Narrate trained.

bench/deploy_mlflow.py saves it with ``mlflow.pyfunc.save_model(python_model=<this file>,
artifacts={"model": <downloaded file>}, model_config={"format": "joblib" | "serving"})``
and ``mlflow models serve`` runs it in bench/.venv-mlflow (where narrate is installed).

- ``joblib``: the fitted scikit-learn pipeline, as an MLflow user would log it.
- ``serving``: Narrate's scikit-learn-free serving copy (Treelite), the same predictor
  Narrate's own Deploy stage can use, so the difference is the server around it.

The answer matches Narrate's predict route in content: the label and one probability per
class for every row.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class NarrateModel(PythonModel):  # type: ignore[misc]
    """Predicts labels and class probabilities with a model file Narrate wrote."""

    def load_context(self, context: Any) -> None:
        """Load the model file named by the ``model`` artifact in the configured format."""
        path = context.artifacts["model"]
        if context.model_config.get("format") == "serving":
            from narrate.core.serving import load_serving

            self.model = load_serving(path)
        else:
            from narrate.core.automl import load_model

            self.model = load_model(path)
        self.classes = [str(c) for c in self.model.classes_]

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:  # noqa: ARG002
        """One row per input row: ``prediction`` and ``proba_<class>`` columns."""
        if hasattr(self.model, "predict_output"):  # serving copy: score once, as Narrate does
            proba = self.model.predict_output(model_input)
            labels = self.model.labels_from_output(proba)
        else:  # scikit-learn pipeline: labels come from predict (the tuned threshold)
            proba = self.model.predict_proba(model_input)
            labels = self.model.predict(model_input)
        out = pd.DataFrame(np.asarray(proba), columns=[f"proba_{c}" for c in self.classes])
        out.insert(0, "prediction", np.asarray(labels))
        return out


mlflow.models.set_model(NarrateModel())
