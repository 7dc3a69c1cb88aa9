"""Build the stored profile of a version (statistics, warnings, PII and the narrative),
and present it with personal data masked."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from narrate.core.data.pii import detect_pii, mask_profile
from narrate.core.data.profile import profile_frame
from narrate.core.data.quality import find_warnings
from narrate.core.narrative.data import dataset_narrative
from narrate.errors import Forbidden

__all__ = ["build_profile", "present_profile"]


def build_profile(
    df: pl.DataFrame, kinds: dict[str, Any], *, name: str, target: str | None
) -> dict[str, Any]:
    """Profile a frame and attach quality warnings, PII findings and a narrative
    (``narrative``, its text, and ``narrative_facts``, the facts behind its numbers).

    The target shapes the target summary, the leakage and class-imbalance warnings and
    the narrative, so the profile is built again whenever the target changes.
    """
    profile = profile_frame(df, kinds, target=target)
    pii = detect_pii(df, kinds)
    warnings = find_warnings(profile, target=target, pii=pii)
    profile["warnings"] = warnings
    profile["pii"] = pii
    narrative = dataset_narrative(profile, warnings, pii, name=name, target=target)
    profile["narrative"] = narrative["text"]
    profile["narrative_facts"] = narrative["facts"]
    return profile


def present_profile(data: bytes, *, owner_id: str, viewer_id: str, reveal: bool = False) -> bytes:
    """The stored profile as shown to a caller: detected personal data masked.

    The stored profile keeps raw values (older profiles hold them too), so masking
    happens here, on the way out, for every transport. Revealing is for the dataset's
    owner only (not admins: seeing other people's data is not part of administering it).

    Args:
        data: The stored profile JSON.
        owner_id: The id of the user who owns the dataset version.
        viewer_id: The id of the user asking.
        reveal: Show the raw values of personal-data columns.

    Returns:
        The profile JSON; masked ones carry ``"pii_masked": true``.

    Raises:
        Forbidden: ``reveal`` asked by someone other than the owner.
    """
    if reveal:
        if viewer_id != owner_id:
            raise Forbidden(
                "Only the dataset's owner can reveal its personal data.",
                code="reveal_forbidden",
                hint="Ask the owner, or view the profile without reveal=true (values masked).",
                details={"parameter": "reveal"},
            )
        return data
    profile = json.loads(data)
    if not profile.get("pii"):
        return data
    masked = mask_profile(profile)
    if "narrative_facts" in masked:
        masked["narrative_facts"] = _masked_facts(masked)
    return json.dumps(masked).encode()


def _masked_facts(masked: dict[str, Any]) -> list[dict[str, Any]]:
    """The narrative's facts that the masked narrative still shows.

    Masking rewrites raw personal values in the narrative's text (a class value, a value
    quoted in a warning); a text fact holding such a value is no longer in the masked
    text, so it is left out. Numbers and names that the text still shows are kept.
    """
    text = str(masked.get("narrative") or "")
    return [
        fact
        for fact in masked.get("narrative_facts") or []
        if not isinstance(fact.get("value"), str) or fact["value"] in text
    ]
