"""Calling the optional LLM: an OpenAI-compatible endpoint behind retries and a breaker.

Every call goes through :func:`chat_json`: the official ``openai`` client with its own
retries off (``max_retries=0``) and an explicit timeout; tenacity retries only what may
pass (429, 5xx, timeouts, connection errors) with exponential backoff and jitter; one
pybreaker circuit breaker per process (per :class:`~narrate.bootstrap.Container`) stops
calling an endpoint that keeps failing and tries once again after the reset time.

Callers never see an exception from here other than :class:`LlmFailed`, whose ``note``
says in plain words why the LLM was not used; they then show the deterministic text.
The answer is only ever read as JSON text: nothing it contains is executed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, cast

import pybreaker
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from narrate.bootstrap import Container
from narrate.services.llm_config import LlmEndpoint, llm_endpoint

if TYPE_CHECKING:
    # Imported when first used: ``openai`` takes about a second to import, and most
    # installations never turn the LLM on.
    import openai
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["LlmFailed", "breaker_is_open", "chat_json", "llm_status"]

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_MAX_WAIT_S = 30.0
_MAX_TOKENS = 800


class LlmFailed(Exception):
    """The LLM was not used; ``note`` says why, for the user (and the log: never the
    prompt or the key)."""

    def __init__(self, note: str, *, logged: bool = True) -> None:
        super().__init__(note)
        self.note = note
        if logged:
            log.warning("LLM not used: %s", note)


def _breaker(container: Container) -> pybreaker.CircuitBreaker:
    with _LOCK:
        breaker = container.extras.get("llm_breaker")
        if breaker is None:
            settings = container.settings
            breaker = pybreaker.CircuitBreaker(
                fail_max=settings.llm_breaker_fail_max,
                reset_timeout=settings.llm_breaker_reset_s,
                name="llm",
            )
            container.extras["llm_breaker"] = breaker
        return breaker


def breaker_is_open(container: Container) -> bool:
    """Whether calls are refused right now (open, and the reset time has not passed)."""
    breaker = _breaker(container)
    if breaker.current_state != pybreaker.STATE_OPEN:
        return False
    opened_at = breaker._state_storage.opened_at
    if opened_at is None:
        return True
    elapsed = time.time() - opened_at.timestamp()
    return bool(elapsed < breaker.reset_timeout)


def llm_status(container: Container) -> dict[str, Any]:
    """``{"llm": "off"|"on"|"breaker_open", "model", "sends_rows"}`` for the UI."""
    endpoint = llm_endpoint(container)
    state = "off" if endpoint is None else "breaker_open" if breaker_is_open(container) else "on"
    return {
        "llm": state,
        "model": endpoint.model if endpoint else None,
        "sends_rows": bool(endpoint and container.settings.llm_allow_rows),
    }


def _client(container: Container, endpoint: LlmEndpoint) -> openai.OpenAI:
    import openai

    timeout = container.settings.llm_timeout_s
    key = (endpoint.base_url, endpoint.api_key, timeout)
    with _LOCK:
        clients: dict[Any, openai.OpenAI] = container.extras.setdefault("llm_clients", {})
        client = clients.get(key)
        if client is None:
            client = openai.OpenAI(
                base_url=endpoint.base_url,
                # Local servers (Ollama, vLLM) take any key; the client insists on one.
                api_key=endpoint.api_key or "no-key",
                timeout=timeout,
                max_retries=0,
            )
            clients.clear()
            clients[key] = client
        return client


def _is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors may pass; anything else will not."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def _describe(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "the LLM did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        return "the LLM endpoint could not be reached"
    if isinstance(exc, openai.APIStatusError):
        return f"the LLM endpoint answered HTTP {exc.status_code}"
    return "the LLM endpoint's answer could not be read"


def _complete(container: Container, endpoint: LlmEndpoint, messages: list[dict[str, str]]) -> str:
    """One completion with retries; raises the last error when every attempt failed."""
    settings = container.settings
    client = _client(container, endpoint)
    retrying = Retrying(
        stop=stop_after_attempt(settings.llm_max_attempts),
        wait=wait_exponential(multiplier=settings.llm_backoff_s, max=_MAX_WAIT_S)
        + wait_random(0, settings.llm_backoff_s),
        retry=retry_if_exception(_is_transient),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            response = client.chat.completions.create(
                model=endpoint.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                temperature=0,
                max_tokens=_MAX_TOKENS,
                response_format={"type": "json_object"},
            )
            choices = response.choices or []
            return (choices[0].message.content or "") if choices else ""
    raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover


def chat_json(container: Container, messages: list[dict[str, str]]) -> dict[str, Any]:
    """Ask the LLM and read its answer as one JSON object.

    Args:
        container: The services (settings, the breaker, cached clients).
        messages: Chat messages (``role``, ``content``).

    Returns:
        The parsed JSON object.

    Raises:
        LlmFailed: The LLM is off, the breaker is open, every attempt failed, or the
            answer is empty or not a JSON object; ``note`` says which.
    """
    endpoint = llm_endpoint(container)
    if endpoint is None:
        raise LlmFailed(
            "The LLM is off (no NARRATE_LLM_BASE_URL); this is the standard text.", logged=False
        )
    import openai

    breaker = _breaker(container)
    try:
        text = breaker.call(_complete, container, endpoint, messages)
    except pybreaker.CircuitBreakerError as exc:
        cause = exc.__cause__ or exc.__context__  # set on the call that trips it
        reason = f" ({_describe(cause)})" if cause else ""
        raise LlmFailed(
            f"The LLM failed several times in a row{reason}; it is paused for "
            f"{container.settings.llm_breaker_reset_s:g} s, so this is the standard text."
        ) from exc
    except (openai.OpenAIError, ValueError) as exc:
        raise LlmFailed(
            f"The LLM was not used: {_describe(exc)}; this is the standard text."
        ) from exc
    return _parse(text)


def _parse(text: str) -> dict[str, Any]:
    cleaned = text.strip()
    if cleaned.startswith("```"):
        # Some models wrap JSON in a Markdown fence even when asked not to.
        cleaned = cleaned.strip("`").removeprefix("json").strip()
    if not cleaned:
        raise LlmFailed("The LLM gave an empty answer; this is the standard text.")
    try:
        value = json.loads(cleaned)
    except ValueError as exc:
        raise LlmFailed("The LLM's answer was not valid JSON; this is the standard text.") from exc
    if not isinstance(value, dict):
        raise LlmFailed("The LLM's answer was not a JSON object; this is the standard text.")
    return value
