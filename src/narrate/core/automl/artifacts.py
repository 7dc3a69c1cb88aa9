"""Saving and loading fitted pipelines (joblib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib

__all__ = ["load_model", "save_model"]


def save_model(obj: Any, path: str | Path) -> Path:
    """Write a fitted object to ``path`` with joblib (compressed), via a temp file.

    Args:
        obj: A fitted pipeline (or any picklable object).
        path: Destination file.

    Returns:
        The written path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    joblib.dump(obj, temporary, compress=3)
    temporary.replace(target)
    return target


def load_model(path: str | Path) -> Any:
    """Load an object written by :func:`save_model`.

    Only load files Narrate wrote itself: joblib files can run code when loaded.

    Args:
        path: The file.

    Returns:
        The object.
    """
    return joblib.load(Path(path))
