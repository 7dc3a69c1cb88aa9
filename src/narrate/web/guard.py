"""ASGI guard in front of the app: who may send a body, how big and how deep it may be.

FastAPI reads a request's whole body before it resolves any dependency, so the sign-in
check in ``deps.py`` comes too late to protect memory: an anonymous 200 MB JSON body used
to be read in full before its 401. This guard runs first and refuses, before a byte of
the body is read:

* anonymous writes to ``/api/`` (no bearer token, no session cookie) with 401;
* bodies declared larger than ``max_body_bytes`` with 413.

It then reads the body itself, counting bytes (chunked bodies declare no length), and
checks the nesting depth of JSON and YAML bodies against ``max_json_depth`` so that no
parser recurses a thousand levels deep. Upload routes are exempt from the body checks:
they stream to disk under their own, larger ``max_upload_mb`` limit.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from itertools import accumulate

import yaml
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from narrate.config import Settings
from narrate.errors import InvalidInput, NarrateError, TooLarge, Unauthorized
from narrate.web.deps import SESSION_COOKIE
from narrate.web.errors import error_response

__all__ = ["RequestGuard", "json_depth_exceeds", "yaml_depth_exceeds"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
# A JSON string, escapes included; written "unrolled" so that the regex engine does not
# backtrack through long strings.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``limit``, without parsing it.

    Brackets inside strings do not count. The scan is iterative (no recursion) and runs at
    C speed: strings are cut out by a regex, then the depth is a running sum.

    Args:
        body: The JSON text (bytes, any encoding that keeps ASCII brackets as is).
        limit: The deepest nesting allowed.

    Returns:
        True when some value lies more than ``limit`` levels deep.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, delete=_NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def yaml_depth_exceeds(text: str | bytes, limit: int) -> bool:
    """Whether a YAML document nests sequences/mappings deeper than ``limit``.

    Reads the event stream (the parser keeps its own stack and does not recurse), so it
    stops early on a hostile document; building the objects (the composer) would recurse.
    Syntax errors are left to the real loader, which names the line.

    Args:
        text: The YAML text.
        limit: The deepest nesting allowed.

    Returns:
        True when some value lies more than ``limit`` levels deep.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit:
                    return True
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        # libyaml refuses very deep documents itself ("exceeded max depth").
        return "depth" in str(exc)
    return False


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _credentials_error(scope: Scope) -> NarrateError | None:
    """A 401 for a request that carries no credentials at all (the same test as deps.py)."""
    auth = _header(scope, b"authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Unauthorized("Use 'Authorization: Bearer <token>'.", code="bad_auth_header")
        return None
    cookies = cookie_parser(_header(scope, b"cookie") or "")
    if cookies.get(SESSION_COOKIE):
        return None
    return Unauthorized(
        "Sign in first: send a bearer token or an API token.",
        hint="POST username and password to /api/v1/auth/token to get one.",
    )


def _too_large(limit_mb: int, received: int | None) -> TooLarge:
    size = f"{received / 1024 / 1024:.1f} MB" if received is not None else "over the limit"
    return TooLarge(
        f"The request body is {size}; JSON and YAML bodies are limited to {limit_mb} MB.",
        code="body_too_large",
        hint="Send less per request, upload data as a file (POST /api/v1/datasets), or ask "
        "an admin to raise NARRATE_MAX_BODY_MB.",
        details={"parameter": "body", "limit_mb": limit_mb, "received_bytes": received},
    )


def _too_deep(syntax: str, limit: int) -> InvalidInput:
    return InvalidInput(
        f"The {syntax} body nests more than {limit} levels deep; the limit is {limit}.",
        code="body_too_deep",
        hint="Flatten the document, or ask an admin to raise NARRATE_MAX_JSON_DEPTH.",
        details={"parameter": "body", "limit": limit},
    )


def _depth_error(scope: Scope, body: bytes, limit: int) -> NarrateError | None:
    media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if media in _YAML_TYPES:
        return _too_deep("YAML", limit) if yaml_depth_exceeds(body, limit) else None
    # Anything else might still reach a JSON parser (FastAPI parses bodies without a
    # content type as JSON), and the scan costs little, so every other body is checked.
    return _too_deep("JSON", limit) if json_depth_exceeds(body, limit) else None


class RequestGuard:
    """Pure ASGI middleware enforcing credentials, body size and nesting depth.

    Args:
        app: The wrapped application.
        settings: Supplies ``max_body_bytes``/``max_body_mb`` and ``max_json_depth``.
        public_paths: ``/api/`` paths that take a body without credentials (sign-in).
        upload_paths: Paths that stream large bodies under their own upload limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        public_paths: Collection[str] = (),
        upload_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.max_mb = settings.max_body_mb
        self.max_depth = settings.max_json_depth
        self.public_paths = frozenset(p.rstrip("/") for p in public_paths)
        self.upload_paths = frozenset(p.rstrip("/") for p in upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        length = _header(scope, b"content-length")
        has_body = (length not in (None, "0")) or _header(scope, b"transfer-encoding") is not None
        is_write = scope["method"] not in _SAFE_METHODS or has_body
        if is_write and scope["path"].startswith("/api/") and path not in self.public_paths:
            error = _credentials_error(scope)
            if error is not None:
                await _reject(error, scope, receive, send)
                return
        if not has_body or path in self.upload_paths:
            await self.app(scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _reject(_too_large(self.max_mb, int(length)), scope, receive, send)
            return
        try:
            body = await _read_limited(receive, self.max_bytes)
        except _Disconnected:
            return  # nobody is left to answer
        if body is None:
            await _reject(_too_large(self.max_mb, None), scope, receive, send)
            return
        depth_error = _depth_error(scope, body, self.max_depth)
        if depth_error is not None:
            await _reject(depth_error, scope, receive, send, is_body_read=True)
            return
        await self.app(scope, _replay(body, receive), send)


class _Disconnected(Exception):
    """The client went away while its body was being read."""


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the real stream."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


async def _reject(
    error: NarrateError, scope: Scope, receive: Receive, send: Send, *, is_body_read: bool = False
) -> None:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if not is_body_read:
        # The rest of the body stays unread, so the connection cannot carry another request.
        headers["Connection"] = "close"
    response = error_response(Request(scope, receive), error.status, error.to_dict(), headers)
    await response(scope, receive, send)
