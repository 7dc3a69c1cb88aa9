"""describe_dataset / describe_column: deterministic text from the numbers."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import narrate
from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.data.readers import read_table
from narrate.core.data.types import infer_types
from narrate.core.narrative.data import describe_column, describe_dataset

SAMPLES = Path(narrate.__file__).parent / "samples"


def _churn_frame() -> pl.DataFrame:
    rows = 200
    return pl.DataFrame(
        {
            "Churn": ["Yes" if i % 4 == 0 else "No" for i in range(rows)],
            "TotalCharges": [" " if i < 11 else f"{i * 3}.25" for i in range(rows)],
            "email": [f"user{i}@example.com" for i in range(rows)],
            "tenure": [i % 70 for i in range(rows)],
        }
    )


def test_describe_dataset_states_key_numbers() -> None:
    frame, kinds = infer_types(_churn_frame())
    profile = profile_frame(frame, kinds, target="Churn")
    pii = detect_pii(frame, kinds)
    warnings = find_warnings(profile, target="Churn", pii=pii)
    text = describe_dataset(profile, warnings, pii, name="telco.csv", target="Churn")
    assert text.startswith("telco.csv has 200 rows and 4 columns.")
    assert "The target `Churn` has 2 classes; the rarest, True, is 25.0% of rows." in text
    assert "`TotalCharges` holds numbers but is stored as text and has 11 blanks." in text
    assert "1 column(s) look like personal data (email): `email`." in text
    assert text == describe_dataset(profile, warnings, pii, name="telco.csv", target="Churn")


def test_describe_dataset_says_when_nothing_is_wrong() -> None:
    frame, kinds = infer_types(
        pl.DataFrame({"a": ["x", "y"] * 10, "b": [float(i) for i in range(20)]})
    )
    profile = profile_frame(frame, kinds)
    text = describe_dataset(profile, find_warnings(profile), [], name="tiny")
    assert "No values are missing." in text
    assert "No serious data-quality problems were found." in text


def test_describe_column_covers_each_kind() -> None:
    frame, kinds = infer_types(read_table(SAMPLES / "penguins.csv", filename="p.csv").frame)
    columns = profile_frame(frame, kinds)["columns"]
    assert describe_column(columns["body_mass_g"]) == (
        "`body_mass_g` (float) has 342 values and 2 empty (0.6%). It ranges from 2,700 to "
        "6,300 (median 4,050, mean 4,202)."
    )
    assert describe_column(columns["species"]).endswith(
        "It has 3 distinct value(s); the most common is 'Adelie' (44.2%)."
    )
    assert "none empty" in describe_column(columns["year"])
