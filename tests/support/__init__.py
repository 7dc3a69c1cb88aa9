"""Shared test helpers: real servers on loopback (PostgreSQL, moto_server, the app)."""
