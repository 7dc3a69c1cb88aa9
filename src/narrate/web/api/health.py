"""Liveness, readiness and Prometheus metrics (outside /api/v1, for operators)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from narrate.web.deps import Services

__all__ = ["router"]

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


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Request counts and latency histograms by route template and status."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
