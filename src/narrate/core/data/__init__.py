"""Upload and Clean stages, pure core: read files, infer types, profile, warn, find PII.

Functions here take paths or polars frames and return frames or plain dicts; they never
touch storage, the web or the database.
"""

__all__: list[str] = []
