"""A small OpenAI-compatible server on loopback for the LLM tests, scriptable per test.

It answers ``POST /v1/chat/completions`` with the next scripted :class:`Reply` (then the
default one) and records every request it received (headers and JSON body), so a test
can count attempts, read the prompt and check the Bearer key. Replies can be slow, fail
with any status, or carry a body that is not JSON.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeLlm", "Reply", "answer"]


@dataclass(frozen=True)
class Reply:
    """One answer: the assistant message ``content`` (or a raw ``body``), after ``delay``."""

    status: int = 200
    content: str | None = None
    body: bytes | None = None
    delay: float = 0.0


def answer(value: dict[str, Any]) -> Reply:
    """A 200 whose message content is ``value`` as JSON (what a well-behaved model sends)."""
    return Reply(content=json.dumps(value))


def _completion(content: str, model: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout) closes the socket while we sleep: not an error."""


class FakeLlm:
    """The fake endpoint: ``script(...)`` the replies, read ``requests`` afterwards."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies: list[Reply] = []
        self._default = answer({"text": "", "answer": "", "citations": []})
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                reply = fake._take(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None:
                    body = reply.body
                elif reply.status == 200:
                    payload = json.loads(raw or b"{}")
                    body = _completion(reply.content or "", str(payload.get("model")))
                else:
                    body = json.dumps(
                        {"error": {"message": f"scripted {reply.status}", "type": "test"}}
                    ).encode()
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _take(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        with self._lock:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            self.requests.append({"path": path, "headers": headers, "json": body})
            return self._replies.pop(0) if self._replies else self._default

    @property
    def base_url(self) -> str:
        """The ``.../v1`` base URL to configure."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *replies: Reply, default: Reply | None = None) -> None:
        """Answer the next requests with ``replies``, then with ``default`` (if given);
        forgets earlier requests."""
        with self._lock:
            self._replies = list(replies)
            if default is not None:
                self._default = default
            self.requests = []

    @property
    def attempts(self) -> int:
        """Requests received since the last :meth:`script`."""
        return len(self.requests)

    def prompts(self) -> str:
        """Every message text received since the last :meth:`script`, joined."""
        texts = []
        for request in self.requests:
            for message in (request["json"] or {}).get("messages", []):
                texts.append(str(message.get("content")))
        return "\n".join(texts)

    def start(self) -> FakeLlm:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
