"""The sample datasets bundled with Narrate, loaded for the first user."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from narrate.bootstrap import Container

__all__ = ["SAMPLES", "load_samples", "sample_path", "sample_split"]

SAMPLES: dict[str, dict[str, str]] = {
    "penguins": {"target": "species", "description": "Palmer penguins: species from body size."},
    "credit_data": {"target": "Status", "description": "Credit scoring: good or bad loans."},
    "hitters": {"target": "Salary", "description": "1986 baseball stats and 1987 salaries."},
}


def sample_path(name: str) -> Path:
    """Path of a bundled sample CSV."""
    return Path(str(resources.files("narrate.samples").joinpath(f"{name}.csv")))


def sample_split(name: str) -> list[int]:
    """The 0-based test-row indices of a sample's fixed 80/20 split."""
    text = resources.files("narrate.samples").joinpath(f"{name}.split.json").read_text()
    data = json.loads(text)
    return [int(i) for i in data["test_indices"]]


def load_samples(container: Container, owner_id: str) -> list[str]:
    """Ingest every bundled sample for a user; return the names loaded."""
    from narrate.services.datasets import ingest_file

    loaded = []
    for name, meta in SAMPLES.items():
        ingest_file(
            container,
            owner_id,
            sample_path(name),
            filename=f"{name}.csv",
            name=name,
            description=meta["description"],
            target=meta["target"],
        )
        loaded.append(name)
    return loaded
