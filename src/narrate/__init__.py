"""Narrate: an AI-guided machine-learning workbench for tabular data."""

import os

__all__ = ["JEMALLOC_CONF", "__version__"]

__version__ = "0.1.0"

# Polars allocates through its own jemalloc, which by default keeps freed pages resident
# for 0.5-1.5 s, purged only when the allocator is next busy. Ingest frees a whole text
# frame while it builds the typed one, so those stale pages decided the peak memory
# (4.1-4.7x a 1M-row CSV). Returning them within 100 ms from a background thread keeps
# the peak near 3.4x at no measurable cost (docs/adr/0009). It must be in the environment
# before polars is first imported (polars then appends it to its own defaults, so these
# values win); an operator's own setting wins over ours.
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:100,muzzy_decay_ms:0"
os.environ.setdefault("_RJEM_MALLOC_CONF", JEMALLOC_CONF)
