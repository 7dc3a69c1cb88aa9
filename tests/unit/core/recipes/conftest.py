"""Fixtures for recipe tests: the bundled sample files and small frames."""

from __future__ import annotations

from importlib.resources import files

import polars as pl
import pytest


def read_sample(name: str) -> pl.DataFrame:
    """Read a CSV shipped inside the ``narrate`` package."""
    return pl.read_csv(files("narrate").joinpath("samples", name).read_bytes())


@pytest.fixture(scope="session")
def credit() -> pl.DataFrame:
    """The credit scoring sample (4,454 rows, target ``Status``)."""
    return read_sample("credit_data.csv")


@pytest.fixture(scope="session")
def penguins() -> pl.DataFrame:
    """The penguins sample (344 rows, with missing values)."""
    return read_sample("penguins.csv")


@pytest.fixture
def people() -> pl.DataFrame:
    """A small frame with numbers, text, missing values and a binary target."""
    return pl.DataFrame(
        {
            "age": [25, 17, None, 40, 33, 17, 61, 52],
            "income": [30.0, None, 50.0, 80.0, 45.0, 10.0, 120.0, None],
            "city": ["Paris", "Lyon", "Paris", None, "Nice", "Lyon", "Paris", "Lille"],
            "email": ["a@x.io", "b@x.io", "c@x.io", "d@x.io", None, "f@x.io", "g@x.io", "h@x.io"],
            "churn": [0, 1, 0, 1, 0, 1, 0, 1],
        }
    )
