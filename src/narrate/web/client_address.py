"""The address of the client a request came from: the one place the app decides it.

``X-Forwarded-For`` is believed only from the reverse proxies in
``NARRATE_TRUSTED_PROXIES``: ``narrate serve`` hands that list to uvicorn's proxy-headers
middleware (and turns it off when the list is empty), which rewrites the peer address
before the app sees the request. Here the app reads that address, and never a header
itself, so a client cannot choose the address that login back-off counts.
"""

from __future__ import annotations

from fastapi import Request

__all__ = ["client_ip"]


def client_ip(request: Request) -> str:
    """The client's IP address as the server established it.

    Args:
        request: The incoming request.

    Returns:
        The peer address (or the trusted proxy's forwarded one), or ``"unknown"`` when the
        server gives none (an in-memory test transport).
    """
    return request.client.host if request.client else "unknown"
