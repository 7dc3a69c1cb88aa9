from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest


def load_sample(name: str) -> pd.DataFrame:
    return pd.read_csv(str(resources.files("narrate") / "samples" / f"{name}.csv"))


@pytest.fixture(scope="session")
def credit() -> pd.DataFrame:
    return load_sample("credit_data")


@pytest.fixture(scope="session")
def penguins() -> pd.DataFrame:
    return load_sample("penguins")


@pytest.fixture(scope="session")
def hitters() -> pd.DataFrame:
    return load_sample("hitters")
