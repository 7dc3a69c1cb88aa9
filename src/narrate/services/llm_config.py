"""Where the optional LLM is: the admin's stored endpoint, else ``NARRATE_LLM_*``.

An admin sets the endpoint with ``PUT /api/v1/admin/llm``; the row (table ``llm_config``)
wins over the environment once it exists, so an admin can also turn the LLM off with an
empty ``base_url``. The API key is sealed with :class:`~narrate.services.secret_box.SecretBox`
before it is written and is never returned (``"api_key_set": true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from narrate.bootstrap import Container
from narrate.errors import InvalidInput
from narrate.services.secret_box import secret_box
from narrate.storage.sql.tables import LlmConfig, utcnow

__all__ = [
    "ROW_ID",
    "LlmEndpoint",
    "check_base_url",
    "get_llm_config",
    "llm_endpoint",
    "put_llm_config",
]

ROW_ID = "default"
_MAX_URL = 2000


@dataclass(frozen=True)
class LlmEndpoint:
    """An LLM endpoint to call: its base URL, model and key (in clear, in memory only)."""

    base_url: str
    model: str
    api_key: str | None
    source: str


def check_base_url(base_url: str) -> str:
    """The base URL stripped, or 422 when it is not an http(s) URL with a host.

    An empty URL is accepted: it turns the LLM off.

    Raises:
        InvalidInput: ``invalid_base_url`` naming the field ``base_url``.
    """
    url = base_url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if len(url) > _MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"base_url '{url[:200]}' is not an http or https URL with a host.",
            code="invalid_base_url",
            hint="Use the endpoint's OpenAI-compatible base, e.g. http://localhost:11434/v1 "
            "for Ollama; leave it empty to turn the LLM off.",
            details={"field": "base_url", "parameter": "base_url"},
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "base_url must not carry a user name or password.",
            code="invalid_base_url",
            hint="Send the key as api_key: it is stored encrypted, a URL is not.",
            details={"field": "base_url", "parameter": "base_url"},
        )
    return url.rstrip("/")


def _row(container: Container) -> tuple[str, str, str | None, Any] | None:
    with container.db.session() as s:
        row = s.get(LlmConfig, ROW_ID)
        if row is None:
            return None
        return row.base_url, row.model, row.api_key_sealed, row.updated_at


def llm_endpoint(container: Container) -> LlmEndpoint | None:
    """The endpoint to call, or None when the LLM is off (no base URL).

    The stored row wins over the environment; a stored row without a key uses
    ``NARRATE_LLM_API_KEY``.
    """
    settings = container.settings
    row = _row(container)
    if row is None:
        base_url, model, key, source = (
            settings.llm_base_url.strip(),
            settings.llm_model,
            settings.llm_api_key,
            "environment",
        )
    else:
        base_url, model, sealed, _ = row
        key = secret_box(settings).open(sealed) if sealed else settings.llm_api_key
        source = "database"
    if not base_url:
        return None
    return LlmEndpoint(base_url, model, key, source)


def get_llm_config(container: Container) -> dict[str, Any]:
    """The LLM configuration as an admin sees it: never the key, only whether one is set.

    Returns:
        ``{"base_url", "model", "api_key_set", "source", "updated_at"}``.
    """
    settings = container.settings
    row = _row(container)
    if row is None:
        return {
            "base_url": settings.llm_base_url.strip(),
            "model": settings.llm_model,
            "api_key_set": bool(settings.llm_api_key),
            "source": "environment",
            "updated_at": None,
        }
    base_url, model, sealed, updated_at = row
    return {
        "base_url": base_url,
        "model": model,
        "api_key_set": bool(sealed or settings.llm_api_key),
        "source": "database",
        "updated_at": updated_at.isoformat(),
    }


def put_llm_config(
    container: Container, admin_id: str, *, base_url: str, model: str, api_key: str | None
) -> dict[str, Any]:
    """Store the LLM endpoint (it wins over the environment from now on).

    Args:
        container: The services.
        admin_id: The admin making the change.
        base_url: http(s) base URL of an OpenAI-compatible API; empty turns the LLM off.
        model: The model name to ask for.
        api_key: A new key (sealed before it is stored); None keeps the stored one, an
            empty string removes it.

    Returns:
        As :func:`get_llm_config`.

    Raises:
        InvalidInput: ``invalid_base_url``.
    """
    url = check_base_url(base_url)
    sealed = secret_box(container.settings).seal(api_key) if api_key else None
    with container.db.session() as s:
        row = s.get(LlmConfig, ROW_ID)
        if row is None:
            row = LlmConfig(id=ROW_ID)
            s.add(row)
        row.base_url, row.model = url, model.strip()
        if api_key is not None:
            row.api_key_sealed = sealed
        row.updated_by, row.updated_at = admin_id, utcnow()
    _forget_clients(container)
    return get_llm_config(container)


def _forget_clients(container: Container) -> None:
    """Drop cached clients so the next call uses the new endpoint and key."""
    container.extras.pop("llm_clients", None)
