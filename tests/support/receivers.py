"""Real receivers on loopback for alert deliveries: an HTTP server that records webhook
POSTs and answers as scripted per path, and an SMTP server (aiosmtpd) that keeps mail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.servers import free_port

__all__ = ["Received", "SmtpSink", "WebhookReceiver", "wait_for"]


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Script:
    statuses: list[int] = field(default_factory=list)
    location: str | None = None


class WebhookReceiver:
    """``ThreadingHTTPServer`` on 127.0.0.1: every POST is recorded; a path answers its
    scripted statuses in turn, then 200 (or its ``always`` status)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._scripts: dict[str, _Script] = {}
        self._always: dict[str, int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                status, location = receiver._answer(
                    self.path,
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body),
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, path: str, request: Received) -> tuple[int, str | None]:
        with self._lock:
            self.received.append(request)
            script = self._scripts.get(path)
            if script is not None and script.statuses:
                return script.statuses.pop(0), script.location
            return self._always.get(path, 200), None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, *statuses: int, location: str | None = None) -> None:
        """Answer the next POSTs to ``path`` with these statuses (a redirect to
        ``location``), then 200."""
        self._scripts[path] = _Script(list(statuses), location)

    def always(self, path: str, status: int) -> None:
        self._always[path] = status

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 keeping every envelope it accepts."""

    def __init__(self) -> None:
        self.port = free_port()  # aiosmtpd cannot bind port 0
        self.mailbox = _Mailbox()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Any]:
        return self.mailbox.messages

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)
