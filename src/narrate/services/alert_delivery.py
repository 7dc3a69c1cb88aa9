"""Sending alerts: signed webhooks, e-mail over SMTP, and the in-app record.

Each channel of a rule gets one :class:`~narrate.storage.sql.tables.AlertDelivery` row,
written ``pending`` before anything is sent and updated with the attempts, the outcome
(``delivered`` or ``failed``) and the last error. Sending runs off the request path: the
server hands it to a small thread pool (:class:`Dispatcher`); a job delivers in its own
process. A failure is recorded, never raised to the caller.

- **webhook**: a JSON ``POST`` with ``X-Narrate-Signature: sha256=<hex HMAC-SHA256 of the
  body with the channel's secret>`` (when it has one), ``X-Narrate-Delivery`` and
  ``X-Narrate-Event: alert``. Network errors, 429 and 5xx are retried with exponential
  backoff and jitter (``NARRATE_WEBHOOK_MAX_ATTEMPTS``, ``NARRATE_WEBHOOK_BACKOFF_S``);
  other 4xx answers and refused addresses fail at once. Redirects (301, 302, 303, 307,
  308; at most 5) are followed by hand, re-posting the same signed body, and each hop is
  checked by :mod:`narrate.services.url_guard`.
- **email**: one message over SMTP (``NARRATE_SMTP_*``), retried like a webhook on
  connection errors and temporary (4xx) SMTP answers.
- **in_app**: the alert itself is the notification (``GET /api/v1/alerts``); its delivery
  is recorded as delivered at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import httpx
import orjson
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from narrate.bootstrap import Container
from narrate.config import Settings
from narrate.errors import InvalidInput, NarrateError
from narrate.services.secret_box import secret_box
from narrate.services.url_guard import pin_url
from narrate.storage.sql.tables import Alert, AlertDelivery, AlertRule, Deployment, utcnow

__all__ = [
    "MAX_REDIRECTS",
    "SIGNATURE_HEADER",
    "Dispatcher",
    "close_dispatcher",
    "deliver_alert",
    "dispatch",
    "sign",
]

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Narrate-Signature"
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
_DISPATCHER = "alert_dispatcher"


class _Retry(Exception):
    """A failure worth another attempt (network error, 429, 5xx, temporary SMTP answer)."""


class _Fail(Exception):
    """A failure another attempt would not fix."""


def sign(body: bytes, secret: str) -> str:
    """The ``X-Narrate-Signature`` value of ``body``: ``sha256=`` and the hex HMAC."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _post_once(settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> None:
    target = url
    for _ in range(MAX_REDIRECTS + 1):
        try:
            pinned = pin_url(
                target,
                allow_private=settings.webhook_allow_private,
                allow_networks=settings.webhook_allow_networks,
            )
        except InvalidInput as exc:
            raise _Fail(exc.message) from exc
        extensions = {}
        if pinned.url.scheme == "https" and pinned.server_name != pinned.address:
            extensions["sni_hostname"] = pinned.server_name
        try:
            # No proxies from the environment (they would defeat the pinned address); the
            # answer's body is never read, so a receiver cannot make us hold a large one.
            with (
                httpx.Client(timeout=settings.webhook_timeout_s, trust_env=False) as client,
                client.stream(
                    "POST",
                    pinned.url,
                    content=body,
                    headers={**headers, "Host": pinned.host_header},
                    extensions=extensions,
                ) as r,
            ):
                pass
        except httpx.HTTPError as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        if r.status_code in _REDIRECTS and "location" in r.headers:
            target = str(httpx.URL(target).join(r.headers["location"]))
            continue
        if r.status_code == 429 or r.status_code >= 500:
            raise _Retry(f"HTTP {r.status_code} from {target}")
        if r.status_code >= 300:
            raise _Fail(f"HTTP {r.status_code} from {target}")
        return
    raise _Fail(f"more than {MAX_REDIRECTS} redirects")


def _mail_once(settings: Settings, message: EmailMessage) -> None:
    if not settings.smtp_host:
        raise _Fail("NARRATE_SMTP_HOST is not set, so Narrate cannot send e-mail.")
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.webhook_timeout_s
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        raise (_Retry(error) if 400 <= exc.smtp_code < 500 else _Fail(error)) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise _Fail(f"recipients refused: {exc.recipients}") from exc
    except OSError as exc:  # connection refused or dropped, timeouts, other SMTP errors
        raise _Retry(f"{type(exc).__name__}: {exc}") from exc


def _with_retries(settings: Settings, send: Any) -> tuple[int, str | None]:
    """Run ``send`` until it succeeds or the attempts run out: (attempts, error or None)."""
    attempts = 0

    def attempt() -> None:
        nonlocal attempts
        attempts += 1
        send()

    backoff = settings.webhook_backoff_s
    retrying = Retrying(
        stop=stop_after_attempt(settings.webhook_max_attempts),
        wait=wait_exponential(multiplier=backoff, max=max(backoff, 60.0)) + wait_random(0, backoff),
        retry=retry_if_exception_type(_Retry),
        reraise=False,
    )
    try:
        retrying(attempt)
    except RetryError as exc:
        return attempts, str(exc.last_attempt.exception())
    except _Fail as exc:
        return attempts, str(exc)
    return attempts, None


def _payload(alert: Alert, deployment: str, delivery_id: str) -> dict[str, Any]:
    return {
        "event": "alert",
        "delivery_id": delivery_id,
        "alert_id": alert.id,
        "rule_id": alert.rule_id,
        "deployment": deployment,
        "kind": alert.kind,
        "severity": alert.severity,
        "status": alert.status,
        "message": alert.message,
        "facts": alert.facts,
        "count": alert.count,
        "first_at": alert.first_at.isoformat(),
        "last_at": alert.last_at.isoformat(),
    }


def _email(settings: Settings, to: str, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = (
        f"[Narrate {payload['severity']}] {payload['deployment']}: {payload['kind']} alert"
    )
    facts = "\n".join(f"  {k}: {v}" for k, v in payload["facts"].items())
    message.set_content(
        f"{payload['message']}\n\nDeployment: {payload['deployment']}\n"
        f"Alert: {payload['alert_id']} (seen {payload['count']} time(s) since "
        f"{payload['first_at']})\n\nFacts:\n{facts}\n"
    )
    return message


def _send(settings: Settings, channel: dict[str, Any], payload: dict[str, Any]) -> Any:
    """The function that sends ``payload`` over ``channel`` once."""
    if channel["type"] == "webhook":
        body = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Narrate-Alerts",
            "X-Narrate-Event": "alert",
            "X-Narrate-Delivery": payload["delivery_id"],
        }
        if channel.get("secret_sealed"):
            secret = secret_box(settings).open(channel["secret_sealed"])
            headers[SIGNATURE_HEADER] = sign(body, secret)
        return lambda: _post_once(settings, channel["url"], body, headers)
    message = _email(settings, channel["to"], payload)
    return lambda: _mail_once(settings, message)


def _target(channel: dict[str, Any]) -> str:
    return str(channel.get("url") or channel.get("to") or "")


def deliver_alert(container: Container, alert_id: str) -> list[str]:
    """Send one alert over every channel of its rule and record each outcome.

    Returns:
        The ids of the delivery records, one per channel.
    """
    with container.db.session() as s:
        alert = s.get(Alert, alert_id)
        rule = s.get(AlertRule, alert.rule_id) if alert is not None else None
        if alert is None or rule is None:
            return []
        deployment = s.get(Deployment, alert.deployment_id)
        name = deployment.name if deployment is not None else alert.deployment_id
        channels = list(rule.channels or [])
        rows = [
            AlertDelivery(alert_id=alert_id, channel=c["type"], target=_target(c)) for c in channels
        ]
        s.add_all(rows)
        s.flush()
        ids = [r.id for r in rows]
        payloads = [_payload(alert, name, i) for i in ids]
    for channel, delivery_id, payload in zip(channels, ids, payloads, strict=True):
        if channel["type"] == "in_app":
            attempts, error = 0, None
        else:
            try:
                attempts, error = _with_retries(
                    container.settings, _send(container.settings, channel, payload)
                )
            except NarrateError as exc:  # e.g. the secret cannot be decrypted any more
                attempts, error = 0, exc.message
        with container.db.session() as s:
            row = s.get(AlertDelivery, delivery_id)
            assert row is not None  # noqa: S101 - written above
            row.attempts, row.last_error = attempts, error
            row.status = "failed" if error else "delivered"
            row.delivered_at = None if error else utcnow()
        if error:
            log.warning("alert %s: %s delivery failed: %s", alert_id, channel["type"], error)
    return ids


class Dispatcher:
    """A small thread pool that sends alerts off the request and sweeper paths."""

    def __init__(self, container: Container, workers: int = 2) -> None:
        self._container = container
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="narrate-alerts")

    def submit(self, alert_id: str) -> None:
        """Send the alert in the background; failures are recorded and logged."""
        self._pool.submit(self._run, alert_id)

    def _run(self, alert_id: str) -> None:
        try:
            deliver_alert(self._container, alert_id)
        except NarrateError as exc:  # e.g. the database is away: the alert stays visible
            log.warning("could not deliver alert %s: %s", alert_id, exc.message)
        except Exception:  # a thread's error is otherwise lost with its future
            log.exception("could not deliver alert %s", alert_id)

    def close(self) -> None:
        """Wait for deliveries under way, then stop the threads."""
        self._pool.shutdown(wait=True)


_LOCK = threading.Lock()


def dispatch(container: Container, alert_id: str, *, inline: bool = False) -> None:
    """Deliver an alert now (``inline``, e.g. inside a job) or in the background."""
    if inline:
        deliver_alert(container, alert_id)
        return
    with _LOCK:
        dispatcher = container.extras.get(_DISPATCHER)
        if dispatcher is None:
            dispatcher = container.extras[_DISPATCHER] = Dispatcher(container)
    dispatcher.submit(alert_id)


def close_dispatcher(container: Container) -> None:
    """Finish the deliveries under way (the app calls this when it stops)."""
    with _LOCK:
        dispatcher = container.extras.pop(_DISPATCHER, None)
    if dispatcher is not None:
        dispatcher.close()
