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
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import yaml
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from narrate.config import Settings
from narrate.core.data.limits import json_depth
from narrate.errors import InvalidInput, NarrateError, TooLarge, Unauthorized
from narrate.web.deps import SESSION_COOKIE
from narrate.web.errors import error_response

__all__ = ["RequestGuard", "YamlShape", "json_depth_exceeds", "measure_yaml"]

# Larger bodies are scanned in a worker thread: a 2 MB YAML scan takes about a second,
# too long to hold the event loop.
_SCAN_INLINE_BYTES = 64 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether a JSON text nests arrays/objects deeper than ``limit``, without parsing it.

    Args:
        body: The JSON text.
        limit: The deepest nesting allowed.

    Returns:
        True when some value lies more than ``limit`` levels deep.
    """
    # Nesting can be no deeper than the number of opening brackets: a typical small body
    # (a prediction's few rows) is cleared by two C-level counts, without the scan.
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    return json_depth(body) > limit


@dataclass
class _Open:
    """A sequence or mapping whose end event has not come yet."""

    anchor: str | None
    height: int = 0  # levels below it seen so far
    nodes: int = 0  # values inside it seen so far, aliases expanded


@dataclass
class YamlShape:
    """Nesting depth and value count of a YAML document with its aliases expanded.

    Counting stops as soon as either passes its limit, so both may stop short of the true
    values; ``is_cyclic`` marks an alias to a collection that contains it (endless depth).
    """

    depth: int = 0
    nodes: int = 0
    is_cyclic: bool = False


class _Cycle(Exception):
    """An alias names a collection that is still open: it contains itself."""


def _completed(
    event: yaml.Event, stack: list[_Open], anchors: dict[str, tuple[int, int]]
) -> tuple[int, int, int]:
    """(height, values, values not counted before) of the value this event completes."""
    if isinstance(event, yaml.CollectionStartEvent):
        stack.append(_Open(event.anchor))
        return 0, 0, 0
    if isinstance(event, yaml.AliasEvent):
        anchor = event.anchor or ""
        if anchor not in anchors and any(o.anchor == anchor for o in stack):
            raise _Cycle
        height, nodes = anchors.get(anchor, (0, 1))  # an unknown anchor: the loader names it
        return height, nodes, nodes
    if isinstance(event, yaml.CollectionEndEvent):
        done = stack.pop()
        value, name, fresh = (done.height + 1, done.nodes + 1), done.anchor, 1
    elif isinstance(event, yaml.ScalarEvent):
        value, name, fresh = (0, 1), event.anchor, 1
    else:
        return 0, 0, 0
    if name is not None:
        anchors[name] = value
    return (*value, fresh)


def measure_yaml(text: str | bytes, max_depth: int, max_nodes: int) -> YamlShape:
    """Measure a YAML document from its event stream, without building it.

    The parser keeps its own stack (building the objects would recurse), and aliases are
    expanded by arithmetic: ``&a [...]`` remembers its height and size, so ``*a`` can hide
    neither depth (a chain of aliases, each one level deeper) nor size (aliases of aliases
    doubling at each step, "billion laughs"). Syntax errors are left to the real loader,
    which names the line.

    Args:
        text: The YAML text.
        max_depth: Stop once some value lies deeper than this.
        max_nodes: Stop once the expanded document holds more values than this.

    Returns:
        The shape measured up to the point where a limit was passed.
    """
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    shape, stack, anchors = YamlShape(), list[_Open](), dict[str, tuple[int, int]]()
    try:
        for event in yaml.parse(text, Loader=loader):
            height, nodes, fresh = _completed(event, stack, anchors)
            shape.depth = max(shape.depth, len(stack) + height)
            shape.nodes += fresh
            if stack:
                stack[-1].height = max(stack[-1].height, height)
                stack[-1].nodes += nodes
            if shape.depth > max_depth or shape.nodes > max_nodes:
                break
    except _Cycle:
        shape.is_cyclic = True
    except yaml.YAMLError as exc:
        # libyaml refuses very deep documents itself ("exceeded max depth").
        if "depth" in str(exc):
            shape.depth = max_depth + 1
    return shape


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
    size = f"is {received / 1024 / 1024:.1f} MB" if received is not None else "passed the limit"
    return TooLarge(
        f"The request body {size}; JSON and YAML bodies are limited to {limit_mb} MB.",
        code="body_too_large",
        hint="Send less per request, upload data as a file (POST /api/v1/datasets), or ask "
        "an admin to raise NARRATE_MAX_BODY_MB.",
        details={"parameter": "body", "limit_mb": limit_mb, "received_bytes": received},
    )


def _too_deep(syntax: str, limit: int, *, is_cyclic: bool = False) -> InvalidInput:
    why = (
        "has an alias inside the collection it refers to, which nests without end"
        if is_cyclic
        else f"nests more than {limit} levels deep"
    )
    return InvalidInput(
        f"The {syntax} body {why}; the limit is {limit} levels.",
        code="body_too_deep",
        hint="Flatten the document, or ask an admin to raise NARRATE_MAX_JSON_DEPTH.",
        details={"parameter": "body", "limit": limit},
    )


def _is_json(media: str) -> bool:
    # FastAPI and the recipe routes parse a body without a content type as JSON too.
    return media in ("", "application/json") or media.endswith("+json")


def _shape_error(scope: Scope, body: bytes, max_depth: int, max_mb: int) -> NarrateError | None:
    """Refuse JSON/YAML bodies nested deeper than ``max_depth`` or whose YAML aliases
    expand past what ``max_mb`` of text could hold (one value needs at least a byte)."""
    media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if media in _YAML_TYPES:
        shape = measure_yaml(body, max_depth, max_nodes=max_mb * 1024 * 1024)
        if shape.is_cyclic or shape.depth > max_depth:
            return _too_deep("YAML", max_depth, is_cyclic=shape.is_cyclic)
        if shape.nodes > max_mb * 1024 * 1024:
            return TooLarge(
                f"The YAML body's aliases expand to more values than {max_mb} MB of text "
                "could hold.",
                code="body_too_large",
                hint="Write the values out instead of repeating aliases of aliases.",
                details={"parameter": "body", "limit_mb": max_mb},
            )
        return None
    if _is_json(media) and json_depth_exceeds(body, max_depth):
        return _too_deep("JSON", max_depth)
    return None


class RequestGuard:
    """Pure ASGI middleware enforcing credentials, body size and nesting depth.

    Args:
        app: The wrapped application.
        settings: Supplies ``max_body_bytes``/``max_body_mb`` and ``max_json_depth``.
        public_paths: ``/api/`` paths that take a body without credentials (sign-in).
        upload_paths: Paths that stream large bodies under their own upload limit; ``*``
            stands for one path segment (``/api/v1/deployments/*/batch``).
        body_limits: Paths (``*`` as above) whose JSON bodies may be larger than
            ``max_body_mb``, with their own limit in MB (prediction requests).
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: Settings,
        public_paths: Collection[str] = (),
        upload_paths: Collection[str] = (),
        body_limits: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.max_mb = settings.max_body_mb
        self.max_depth = settings.max_json_depth
        self.public_paths = frozenset(p.rstrip("/") for p in public_paths)
        self.upload_paths = _patterns(upload_paths)
        self.body_limits = [(_patterns([p]), mb) for p, mb in (body_limits or {}).items()]

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
        if not has_body or self.upload_paths.match(path):
            await self.app(scope, receive, send)
            return
        max_mb = next((mb for pattern, mb in self.body_limits if pattern.match(path)), self.max_mb)
        max_bytes = max_mb * 1024 * 1024 if max_mb != self.max_mb else self.max_bytes
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _reject(_too_large(max_mb, int(length)), scope, receive, send)
            return
        try:
            body = await _read_limited(receive, max_bytes)
        except _Disconnected:
            return  # nobody is left to answer
        if body is None:
            await _reject(_too_large(max_mb, None), scope, receive, send)
            return
        shape_error = (
            await run_in_threadpool(_shape_error, scope, body, self.max_depth, self.max_mb)
            if len(body) > _SCAN_INLINE_BYTES
            else _shape_error(scope, body, self.max_depth, self.max_mb)
        )
        if shape_error is not None:
            await _reject(shape_error, scope, receive, send, is_body_read=True)
            return
        await self.app(scope, _replay(body, receive), send)


def _patterns(paths: Collection[str]) -> re.Pattern[str]:
    """One regular expression matching any of ``paths`` (``*`` = one path segment)."""
    if not paths:
        return re.compile(r"(?!)")
    parts = [re.escape(p.rstrip("/")).replace(r"\*", "[^/]+") for p in paths]
    return re.compile("^(?:" + "|".join(parts) + ")$")


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
