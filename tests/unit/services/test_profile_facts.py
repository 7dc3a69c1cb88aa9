"""The stored profile keeps the data narrative's facts; masking personal data masks them."""

from __future__ import annotations

import json

import polars as pl

from narrate.core.data.types import infer_types
from narrate.core.narrative.grounding import ungrounded_numbers
from narrate.services.profiles import build_profile, present_profile

RAW = "ann.lee@example.com"


def _profile() -> dict[str, object]:
    owners = [RAW if i % 5 == 0 else "bob.ray@example.com" for i in range(120)]
    frame, kinds = infer_types(pl.DataFrame({"owner": owners, "x": [float(i) for i in range(120)]}))
    return build_profile(frame, kinds, name="contacts", target="owner")


def test_the_profile_stores_facts_beside_the_narrative() -> None:
    profile = _profile()
    facts = profile["narrative_facts"]
    assert isinstance(facts, list) and isinstance(profile["narrative"], str)
    assert ungrounded_numbers(profile["narrative"], facts) == []
    assert {"name": "rows", "value": 120, "source": "table.rows"} in facts


def test_masked_profiles_drop_facts_that_quote_raw_personal_values() -> None:
    profile = _profile()
    assert RAW in json.dumps(profile["narrative_facts"])
    shown = json.loads(present_profile(json.dumps(profile).encode(), owner_id="a", viewer_id="b"))
    assert shown["pii_masked"] is True
    assert RAW not in json.dumps(shown)
    assert ungrounded_numbers(shown["narrative"], shown["narrative_facts"]) == []
    assert {
        "name": "rarest class share (%)",
        "value": 20.0,
        "source": "target.classes[1].share",
    } in (shown["narrative_facts"])
    revealed = json.loads(
        present_profile(json.dumps(profile).encode(), owner_id="a", viewer_id="a", reveal=True)
    )
    assert revealed["narrative_facts"] == profile["narrative_facts"]
