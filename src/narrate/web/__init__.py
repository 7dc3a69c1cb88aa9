"""Transports over HTTP: the JSON API (/api/v1) and the server-rendered UI."""
