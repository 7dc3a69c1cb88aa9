"""Narrate: an AI-guided machine-learning workbench for tabular data."""

__all__ = ["__version__"]

__version__ = "0.1.0"
