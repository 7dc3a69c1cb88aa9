"""Deterministic plain-language narratives of data, models and predictions."""
