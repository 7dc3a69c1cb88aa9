"""Build the stored profile of a version: statistics, warnings, PII and the narrative."""

from __future__ import annotations

from typing import Any

import polars as pl

from narrate.core.data.pii import detect_pii
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.narrative.data import describe_dataset

__all__ = ["build_profile"]


def build_profile(
    df: pl.DataFrame, kinds: dict[str, Any], *, name: str, target: str | None
) -> dict[str, Any]:
    """Profile a frame and attach quality warnings, PII findings and a narrative.

    The target shapes the target summary, the leakage and class-imbalance warnings and
    the narrative, so the profile is built again whenever the target changes.
    """
    profile = profile_frame(df, kinds, target=target)
    pii = detect_pii(df, kinds)
    warnings = find_warnings(profile, target=target, pii=pii)
    profile["warnings"] = warnings
    profile["pii"] = pii
    profile["narrative"] = describe_dataset(profile, warnings, pii, name=name, target=target)
    return profile
