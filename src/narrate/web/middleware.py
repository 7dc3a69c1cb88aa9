"""ASGI middleware: request ids, security headers, API version negotiation and metrics."""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from narrate.web.prediction_metrics import PredictionMetrics

__all__ = [
    "HttpMetrics",
    "NarrateMiddleware",
    "current_request_id",
    "install_request_id_logging",
    "request_id_var",
]

log = logging.getLogger("narrate.http")

_VENDOR = re.compile(r"application/vnd\.narrate\.v(\d+)\+json")
SUPPORTED_API_VERSIONS = frozenset({"1"})
# Inline scripts run only when they carry the request's nonce (``request.state.csp_nonce``).
# No 'unsafe-eval': with it, injected HTML could run script through htmx attributes
# (hx-on, hx-vals="js:..."); htmx is told not to eval (base.html) and Plotly needs no eval.
_CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "narrate_request_id", default=None
)
"""The id of the request being handled in this context (None outside requests)."""


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return request_id_var.get()


def install_request_id_logging() -> None:
    """Give every log record a ``request_id`` attribute ("-" outside a request).

    Done with a record factory rather than a handler filter so that every handler (the
    serve console, pytest's caplog, a JSON shipper) sees it. Safe to call more than once.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_narrate_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get() or "-"
        return record

    factory._narrate_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class HttpMetrics:
    """Prometheus request counters and latency histograms, one registry per app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "narrate_http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "narrate_http_request_duration_seconds",
            "HTTP request latency by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.predictions = PredictionMetrics(self.registry)


def _route_template(scope: Scope) -> str:
    # FastAPI >= 0.16x keeps the full template of routes from included routers here.
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    if effective is not None and getattr(effective, "path", None):
        return str(effective.path)
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class NarrateMiddleware:
    """One pass over every request, cheaper than stacked BaseHTTPMiddleware layers."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", request_id):
            request_id = uuid.uuid4().hex
        nonce = secrets.token_urlsafe(16)
        state = scope.setdefault("state", {})
        state["request_id"], state["csp_nonce"] = request_id, nonce
        csp = _CSP.format(nonce=nonce).encode()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        is_https = scope.get("scheme") == "https" or _header(scope, b"x-forwarded-proto") == "https"

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", csp),
                ]
                if is_https:
                    headers.append(
                        (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
                    )
                message["headers"] = headers
            await send(message)

        try:
            version_error = self._check_version(scope)
            if version_error is not None:
                await self._send_406(version_error, scope, receive, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            # A crash propagates to Starlette's outermost handler (status stays 500).
            self._observe(scope, status_holder["status"], time.perf_counter() - started)
            request_id_var.reset(token)

    @staticmethod
    def _check_version(scope: Scope) -> str | None:
        if not scope["path"].startswith("/api/"):
            return None
        accept = _header(scope, b"accept") or ""
        versions = _VENDOR.findall(accept)
        if versions and not set(versions) & SUPPORTED_API_VERSIONS:
            return str(versions[0])
        return None

    @staticmethod
    async def _send_406(version: str, scope: Scope, receive: Receive, send: Send) -> None:
        from narrate.web.errors import error_response  # errors imports this module

        body = {
            "code": "unsupported_api_version",
            "message": f"API version {version} is not served here; this server speaks version 1.",
            "hint": "Send Accept: application/vnd.narrate.v1+json or application/json.",
            "details": {"requested": version, "supported": sorted(SUPPORTED_API_VERSIONS)},
        }
        response = error_response(Request(scope, receive), 406, body)
        await response(scope, receive, send)

    def _observe(self, scope: Scope, status: int, elapsed: float) -> None:
        route = _route_template(scope)
        labels = (scope["method"], route, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.latency.labels(*labels).observe(elapsed)
        log.info(
            "%s %s -> %s in %.1f ms",
            scope["method"],
            scope["path"],
            status,
            elapsed * 1000,
            extra={"route": route},
        )
