"""Liveness, readiness and Prometheus metrics (outside /api/v1, for operators)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from narrate.errors import Forbidden, InvalidInput, Unauthorized
from narrate.web.deps import Services
from narrate.web.ops_metrics import database_registry

__all__ = ["parse_networks", "router"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

router = APIRouter(tags=["health"])
_CHECK_TIMEOUT_S = 5.0


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the process runs."""
    return {"status": "ok"}


async def _timed(name: str, check: Callable[[], None]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(check), timeout=_CHECK_TIMEOUT_S)
        status, error = "ok", None
    except TimeoutError:
        status, error = "failed", f"no answer within {_CHECK_TIMEOUT_S:.0f} s"
    except Exception as exc:  # any failure of a dependency means "not ready"
        status, error = "failed", str(exc)
    out: dict[str, Any] = {
        "name": name,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if error:
        out["error"] = error
    return out


@router.get("/health/ready", summary="Database and artifact store answer")
async def ready(services: Services) -> JSONResponse:
    """Check the database and the artifact store for real, in parallel."""
    checks = await asyncio.gather(
        _timed("database", services.db.ping), _timed("artifact_store", services.blobs.check)
    )
    ok = all(c["status"] == "ok" for c in checks)
    return JSONResponse(
        {"status": "ok" if ok else "failed", "checks": list(checks)}, status_code=200 if ok else 503
    )


def parse_networks(entries: Iterable[str], setting: str) -> tuple[Network, ...]:
    """Addresses or CIDR networks from a setting, checked when the app is built.

    Args:
        entries: ``127.0.0.1``, ``10.0.0.0/8``, ``::1/128`` ...
        setting: The environment variable, named in the error.

    Returns:
        The networks (a bare address is a one-address network).

    Raises:
        InvalidInput: An entry is not an address or network.
    """
    try:
        return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)
    except ValueError as exc:
        raise InvalidInput(
            f"{setting} holds an entry that is not an address or network: {exc}.",
            code="invalid_setting",
            hint="Use addresses or CIDR networks separated by commas, e.g. 127.0.0.1,10.0.0.0/8.",
            details={"setting": setting},
        ) from exc


def _is_allowed_peer(host: str | None, networks: Iterable[Network]) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False  # not an IP address (a Unix socket, a test transport)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in networks)


def _check_metrics_access(request: Request) -> None:
    """Allow-listed peers read /metrics freely; others need NARRATE_METRICS_TOKEN."""
    # The peer address, not X-Forwarded-For: a header is whatever the client says it is.
    if _is_allowed_peer(
        request.client.host if request.client else None, request.app.state.metrics_allow
    ):
        return
    expected = request.app.state.container.settings.metrics_token
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    if not sent:
        raise Forbidden(
            "Metrics are readable only from allowed addresses or with the metrics token.",
            code="metrics_forbidden",
            hint="Send 'Authorization: Bearer <NARRATE_METRICS_TOKEN>' or add this address "
            "to NARRATE_METRICS_ALLOW.",
        )
    if (
        scheme.lower() != "bearer"
        or not expected
        or not hmac.compare_digest(sent.encode(), expected.encode())
    ):
        raise Unauthorized(
            "The metrics token is wrong.",
            code="bad_metrics_token",
            hint="Send 'Authorization: Bearer <NARRATE_METRICS_TOKEN>'.",
        )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Request counts and latency histograms by route template and status.

    Raises:
        Forbidden: The peer is not allow-listed and sent no token.
        Unauthorized: The peer sent a wrong token.
    """
    _check_metrics_access(request)
    registry = request.app.state.metrics.registry
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # `narrate serve --workers N`: every process writes its samples to that folder,
        # and whichever process answers sums them, so a scrape sees the whole server.
        request.app.state.metrics.predictions.flush()  # this process's newest counts
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    # Drift, performance, jobs, alerts: read from the database by this process only (once
    # per NARRATE_METRICS_DB_CACHE_S), never summed across processes.
    database = database_registry(request.app)
    body = await asyncio.to_thread(lambda: generate_latest(registry) + generate_latest(database))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
