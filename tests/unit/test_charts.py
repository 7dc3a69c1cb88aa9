"""Chart specs for the Clean page are built from every kind of profiled column."""

from __future__ import annotations

import json

import polars as pl

from narrate.core.data.profile import profile_frame
from narrate.core.data.types import infer_types
from narrate.web.pages.charts import profile_charts


def test_charts_cover_numeric_date_and_category_columns() -> None:
    raw = pl.DataFrame(
        {
            "x": [float(i % 17) for i in range(300)],
            "when": [f"2024-0{1 + i % 9}-1{i % 9}" for i in range(300)],
            "city": [["Oslo", "Lima", "Pune"][i % 3] for i in range(300)],
            "y": [i % 2 for i in range(300)],
        }
    ).with_columns(pl.col("x").cast(pl.Utf8))
    df, kinds = infer_types(raw)
    charts = profile_charts(profile_frame(df, kinds))
    assert set(charts["columns"]) == {"x", "when", "city", "y"}
    when = charts["columns"]["when"]["data"][0]
    assert all(isinstance(v, str) for v in when["x"])
    json.dumps(charts)  # every spec is plain JSON
