"""Alert rules and alerts over real HTTP on SQLite and PostgreSQL: rules and their bad
inputs, encrypted secrets, grouping, cool-down and auto-resolve, deliveries to a real
webhook receiver and a real SMTP server on loopback (retries, failures, redirects),
acknowledge/resolve, visibility, and the end-to-end path drift report -> alert -> signed
webhook and e-mail.

One small model is trained on the credit sample and deployed; 60 predictions are logged,
so a latency rule's condition is switched on and off by its threshold alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import text
from tests.conftest import ADMIN_PASSWORD, SAMPLES, backend_url, login, make_settings
from tests.support.api import train_quickly, wait_job
from tests.support.receivers import SmtpSink, WebhookReceiver, wait_for
from tests.support.servers import AppServer

from narrate.bootstrap import Container, build_container
from narrate.errors import InvalidInput
from narrate.services import alert_delivery, alert_rules, datasets, users
from narrate.storage.sql.tables import Alert, AlertRule
from narrate.storage.sql.visibility import Owner

API = "/api/v1"
ALICE_PASSWORD = "owner Alice's long passphrase 71"
BOB_PASSWORD = "other Bob's long passphrase 38"
TARGET = "Status"
SECRET = "webhook secret 0123456789"
FIRES = 0.000001  # latency p95 in ms: every logged window is above it
NEVER = 3_000_000.0


@dataclass
class World:
    container: Container
    owner: httpx.Client
    admin: httpx.Client
    other: httpx.Client
    alice_id: str
    deployment: str
    model_version_id: str
    rows: list[dict[str, Any]]
    hooks: WebhookReceiver
    smtp: SmtpSink


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    from narrate.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("alerts")
    hooks = WebhookReceiver().start()
    smtp = SmtpSink().start()
    settings = make_settings(
        tmp,
        backend_url(request, tmp),
        prediction_log_flush_s=0.2,
        deploy_refresh_s=0.2,
        alert_check_s=3600,  # the periodic check stays out of the way; tests call /check
        webhook_allow_private=True,  # the receivers listen on loopback
        webhook_backoff_s=0.01,
        webhook_max_attempts=3,
        webhook_timeout_s=5,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="alerts@narrate.test",
    )
    container = build_container(settings)
    container.db.upgrade()
    users.create_user(container.db, "admin", ADMIN_PASSWORD, "admin")
    alice = users.create_user(container.db, "alice", ALICE_PASSWORD, "analyst")
    users.create_user(container.db, "bob", BOB_PASSWORD, "analyst")
    server = AppServer(create_app(container.settings, container)).start()
    try:
        with (
            login(server.base_url, "alice", ALICE_PASSWORD) as owner,
            login(server.base_url, "admin", ADMIN_PASSWORD) as admin,
            login(server.base_url, "bob", BOB_PASSWORD) as other,
        ):
            dataset = datasets.ingest_file(
                container, alice.id, SAMPLES / "credit_data.csv", filename="credit_data.csv"
            )
            datasets.update_dataset(container, Owner(alice.id), dataset["id"], target=TARGET)
            model_id = train_quickly(owner, dataset["id"])
            mv = owner.get(f"{API}/models/{model_id}").json()["current_version_id"]
            deployment = "alerts-" + uuid.uuid4().hex[:8]
            r = owner.post(f"{API}/deployments", json={"name": deployment, "model_version_id": mv})
            assert r.status_code == 201, r.text
            frame = pd.read_csv(SAMPLES / "credit_data.csv").drop(columns=[TARGET]).head(300)
            frame["Income"] = frame["Income"] * 3  # a shift the drift report sees
            rows = [
                {k: (None if pd.isna(v) else v) for k, v in row.items()}
                for row in frame.to_dict(orient="records")
            ]
            r = owner.post(f"{API}/deployments/{deployment}/predict", json={"rows": rows[:60]})
            assert r.status_code == 200, r.text
            container.extras["prediction_log"].flush()
            yield World(container, owner, admin, other, alice.id, deployment, mv, rows, hooks, smtp)
    finally:
        server.stop()
        container.close()
        hooks.stop()
        smtp.stop()


def _rule(world: World, **spec: Any) -> dict[str, Any]:
    body = {"deployment": world.deployment, "kind": "latency_p95", "threshold": FIRES, **spec}
    body.setdefault("channels", [{"type": "in_app"}])
    r = world.owner.post(f"{API}/alert-rules", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _check(world: World, rule_id: str) -> dict[str, Any]:
    r = world.owner.post(f"{API}/alert-rules/{rule_id}/check")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _alert(world: World, alert_id: str) -> dict[str, Any]:
    r = world.owner.get(f"{API}/alerts/{alert_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _settled(world: World, alert_id: str) -> dict[str, Any]:
    """The alert once no delivery is pending any more."""

    def done() -> dict[str, Any] | None:
        alert = _alert(world, alert_id)
        pending = [d for d in alert["deliveries"] if d["status"] == "pending"]
        return alert if alert["deliveries"] and not pending else None

    return dict(wait_for(done))


def _set_threshold(world: World, rule_id: str, value: float) -> None:
    r = world.owner.patch(f"{API}/alert-rules/{rule_id}", json={"threshold": value})
    assert r.status_code == 200, r.text


# --- rules --------------------------------------------------------------------------------


def test_webhook_secret_is_stored_encrypted_and_never_returned(world: World) -> None:
    rule = _rule(
        world,
        channels=[{"type": "webhook", "url": world.hooks.url("/secret"), "secret": SECRET}],
    )
    assert rule["channels"] == [
        {"type": "webhook", "url": world.hooks.url("/secret"), "secret_set": True, "to": None}
    ]
    for response in (
        world.owner.get(f"{API}/alert-rules/{rule['rule_id']}"),
        world.owner.get(f"{API}/alert-rules", params={"deployment": world.deployment}),
    ):
        assert response.status_code == 200
        assert SECRET not in response.text and "secret_sealed" not in response.text
    with world.container.db.engine.connect() as conn:
        raw = conn.execute(
            text("SELECT channels FROM alert_rules WHERE id = :id"), {"id": rule["rule_id"]}
        ).scalar_one()
    raw_text = raw if isinstance(raw, str) else json.dumps(raw)
    assert SECRET not in raw_text
    assert '"secret_sealed": "fernet:' in raw_text.replace('":"', '": "')
    # PATCH without a secret keeps it; the list shows the rule with its defaults.
    r = world.owner.patch(
        f"{API}/alert-rules/{rule['rule_id']}",
        json={"channels": [{"type": "webhook", "url": world.hooks.url("/secret")}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["channels"][0]["secret_set"] is True
    assert rule["severity"] == "warning" and rule["cooldown_s"] == 3600
    assert rule["window_minutes"] == 15 and rule["enabled"] is True


BAD_RULES = [
    ({"deployment": "no-such-deployment"}, "unknown_deployment", "deployment"),
    ({"kind": "drift", "threshold": 0.2}, "invalid_input", "threshold"),
    ({"kind": "drift", "level": "extreme"}, "invalid_input", "body.level"),
    ({"kind": "error_rate", "threshold": 1.5}, "invalid_threshold", "threshold"),
    ({"kind": "error_rate", "threshold": 0}, "invalid_threshold", "threshold"),
    ({"kind": "latency_p95", "threshold": None}, "invalid_threshold", "threshold"),
    ({"kind": "latency_p95", "threshold": -5}, "invalid_threshold", "threshold"),
    ({"kind": "latency_p95", "level": "high"}, "invalid_input", "level"),
    ({"kind": "tea_temperature"}, "invalid_input", "body.kind"),
    ({"channels": []}, "invalid_input", "body.channels"),
    ({"channels": [{"type": "pager"}]}, "invalid_input", "body.channels.0"),
    (
        {"channels": [{"type": "webhook", "url": "ftp://8.8.8.8/x"}]},
        "invalid_url",
        "channels[0].url",
    ),
    (
        {"channels": [{"type": "in_app"}, {"type": "webhook", "url": "http://exa mple.com/"}]},
        "invalid_url",
        "channels[1].url",
    ),
    (
        {"channels": [{"type": "webhook", "url": "http://nowhere.invalid/"}]},
        "unresolvable_host",
        "channels[0].url",
    ),
    ({"channels": [{"type": "email", "to": "not an address"}]}, "invalid_email", "channels[0].to"),
    (
        {"channels": [{"type": "email", "to": "ops@example.com\r\nBcc: x@evil.test"}]},
        "invalid_email",
        "channels[0].to",
    ),
    ({"cooldown_s": -1}, "invalid_input", "body.cooldown_s"),
    ({"severity": "apocalyptic"}, "invalid_input", "body.severity"),
]


@pytest.mark.parametrize(
    ("change", "code", "field"), BAD_RULES, ids=[f"{c}-{f}" for _, c, f in BAD_RULES]
)
def test_bad_rule_is_a_422_naming_the_field(
    world: World, change: dict[str, Any], code: str, field: str
) -> None:
    body = {
        "deployment": world.deployment,
        "kind": "latency_p95",
        "threshold": 100,
        "channels": [{"type": "in_app"}],
        **change,
    }
    body = {k: v for k, v in body.items() if v is not None}
    r = world.owner.post(f"{API}/alert-rules", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == code
    if code == "invalid_input" and field.startswith("body."):
        assert f"'{field}" in error["message"]
    else:
        assert error["details"]["parameter"] == field


def test_loopback_webhook_is_refused_when_private_addresses_are_not_allowed(
    world: World,
) -> None:
    strict = world.container.settings.model_copy(update={"webhook_allow_private": False})
    container = Container(strict, world.container.db, world.container.blobs)
    spec = {
        "deployment": world.deployment,
        "kind": "latency_p95",
        "threshold": 100.0,
        "channels": [{"type": "in_app"}, {"type": "webhook", "url": world.hooks.url("/x")}],
    }
    with pytest.raises(InvalidInput) as err:
        alert_rules.create_rule(container, Owner(world.alice_id), spec)
    assert err.value.code == "url_refused"
    assert err.value.details["parameter"] == "channels[1].url"
    assert "loopback" in err.value.message


# --- evaluation, grouping, cool-down ------------------------------------------------------


def test_flapping_condition_is_delivered_once_within_the_cooldown(world: World) -> None:
    path = "/flap-" + uuid.uuid4().hex[:6]
    rule = _rule(
        world, cooldown_s=3600, channels=[{"type": "webhook", "url": world.hooks.url(path)}]
    )
    first = _check(world, rule["rule_id"])
    assert first["firing"] is True and first["action"] == "opened" and first["delivering"]
    assert "latency p95" in first["message"].lower()
    assert first["facts"]["rows"] >= 60
    # Still firing: grouped into the same alert, not sent again.
    again = _check(world, rule["rule_id"])
    assert again["action"] == "grouped" and again["alert_id"] == first["alert_id"]
    assert not again["delivering"]
    assert _alert(world, first["alert_id"])["count"] == 2
    # It clears: resolved automatically.
    _set_threshold(world, rule["rule_id"], NEVER)
    cleared = _check(world, rule["rule_id"])
    assert cleared["firing"] is False and cleared["action"] == "resolved"
    resolved = _alert(world, first["alert_id"])
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "auto"
    # It fires again within the cool-down: a new alert, held back.
    _set_threshold(world, rule["rule_id"], FIRES)
    back = _check(world, rule["rule_id"])
    assert back["action"] == "opened, held by the cool-down"
    assert back["alert_id"] != first["alert_id"] and not back["delivering"]
    _settled(world, first["alert_id"])
    assert len(world.hooks.at(path)) == 1
    held = _alert(world, back["alert_id"])
    assert held["deliveries"] == [] and held["notified_at"] is None
    listed = world.owner.get(f"{API}/alerts", params={"deployment": world.deployment}).json()
    mine = [a for a in listed["items"] if a["rule_id"] == rule["rule_id"]]
    assert sorted(a["status"] for a in mine) == ["open", "resolved"]


def test_held_alert_is_sent_once_the_cooldown_has_passed(world: World) -> None:
    path = "/cool-" + uuid.uuid4().hex[:6]
    rule = _rule(world, cooldown_s=0, channels=[{"type": "webhook", "url": world.hooks.url(path)}])
    first = _check(world, rule["rule_id"])
    assert first["delivering"]
    _set_threshold(world, rule["rule_id"], NEVER)
    _check(world, rule["rule_id"])
    _set_threshold(world, rule["rule_id"], FIRES)
    second = _check(world, rule["rule_id"])
    assert second["action"] == "opened" and second["delivering"]  # no cool-down: sent
    _settled(world, second["alert_id"])
    assert len(world.hooks.at(path)) == 2


def test_disabled_rules_are_left_out_of_the_periodic_check(world: World) -> None:
    from narrate.services.alerts import check_all

    rule = _rule(world, enabled=False)
    check_all(world.container)
    with world.container.db.session() as s:
        row = s.get(AlertRule, rule["rule_id"])
        assert row is not None and row.last_checked_at is None
        assert s.query(Alert).filter(Alert.rule_id == rule["rule_id"]).count() == 0
    r = world.owner.patch(f"{API}/alert-rules/{rule['rule_id']}", json={"enabled": True})
    assert r.json()["enabled"] is True
    assert check_all(world.container) >= 1
    with world.container.db.session() as s:
        assert s.query(Alert).filter(Alert.rule_id == rule["rule_id"]).count() == 1


# --- deliveries ---------------------------------------------------------------------------


def test_webhook_is_signed_and_retried_until_it_succeeds(world: World) -> None:
    path = "/flaky-" + uuid.uuid4().hex[:6]
    world.hooks.script(path, 500, 503)
    rule = _rule(
        world,
        severity="critical",
        channels=[{"type": "webhook", "url": world.hooks.url(path), "secret": SECRET}],
    )
    found = _check(world, rule["rule_id"])
    alert = _settled(world, found["alert_id"])
    (delivery,) = alert["deliveries"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["last_error"] is None and delivery["delivered_at"] is not None
    got = world.hooks.at(path)
    assert len(got) == 3
    for request in got:
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-narrate-signature"], expected)
        assert request.headers["content-type"] == "application/json"
    payload = json.loads(got[-1].body)
    assert payload["alert_id"] == found["alert_id"] and payload["rule_id"] == rule["rule_id"]
    assert payload["deployment"] == world.deployment and payload["severity"] == "critical"
    assert payload["kind"] == "latency_p95" and payload["delivery_id"] == delivery["delivery_id"]


def test_webhook_that_always_fails_is_recorded_failed_after_every_attempt(world: World) -> None:
    path = "/down-" + uuid.uuid4().hex[:6]
    world.hooks.always(path, 500)
    rule = _rule(
        world, channels=[{"type": "webhook", "url": world.hooks.url(path)}, {"type": "in_app"}]
    )
    alert = _settled(world, _check(world, rule["rule_id"])["alert_id"])
    webhook, in_app = alert["deliveries"]
    assert webhook["status"] == "failed" and webhook["attempts"] == 3
    assert "HTTP 500" in webhook["last_error"] and webhook["delivered_at"] is None
    assert in_app["status"] == "delivered" and in_app["attempts"] == 0
    assert len(world.hooks.at(path)) == 3


def test_client_error_is_not_retried(world: World) -> None:
    path = "/gone-" + uuid.uuid4().hex[:6]
    world.hooks.always(path, 410)
    rule = _rule(world, channels=[{"type": "webhook", "url": world.hooks.url(path)}])
    alert = _settled(world, _check(world, rule["rule_id"])["alert_id"])
    assert alert["deliveries"][0]["attempts"] == 1
    assert "HTTP 410" in alert["deliveries"][0]["last_error"]


def test_redirect_is_followed_and_each_hop_is_checked(world: World) -> None:
    start, end = "/hop-" + uuid.uuid4().hex[:6], "/landed-" + uuid.uuid4().hex[:6]
    world.hooks.script(start, 307, location=world.hooks.url(end))
    rule = _rule(world, channels=[{"type": "webhook", "url": world.hooks.url(start)}])
    alert = _settled(world, _check(world, rule["rule_id"])["alert_id"])
    assert alert["deliveries"][0]["status"] == "delivered"
    assert len(world.hooks.at(start)) == 1 and len(world.hooks.at(end)) == 1
    assert world.hooks.at(end)[0].body == world.hooks.at(start)[0].body


def test_redirect_to_a_private_address_is_refused(world: World) -> None:
    # Only the receiver's own address is allowed; its redirect to the cloud metadata
    # address is checked like the first URL and refused before any connection.
    path = "/to-metadata-" + uuid.uuid4().hex[:6]
    world.hooks.script(path, 302, location="http://169.254.169.254/latest/meta-data/")
    rule = _rule(world, channels=[{"type": "webhook", "url": world.hooks.url(path)}])
    found = _check(world, rule["rule_id"])
    _settled(world, found["alert_id"])  # the world's own (permissive) delivery
    world.hooks.script(path, 302, location="http://169.254.169.254/latest/meta-data/")
    strict = world.container.settings.model_copy(
        update={"webhook_allow_private": False, "webhook_allow_networks": ["127.0.0.1/32"]}
    )
    container = Container(strict, world.container.db, world.container.blobs)
    (delivery_id,) = alert_delivery.deliver_alert(container, found["alert_id"])
    alert = _alert(world, found["alert_id"])
    delivery = next(d for d in alert["deliveries"] if d["delivery_id"] == delivery_id)
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert "169.254.169.254 (link-local)" in delivery["last_error"]


def test_email_reaches_a_real_smtp_server(world: World) -> None:
    to = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    rule = _rule(world, channels=[{"type": "email", "to": to}])
    alert = _settled(world, _check(world, rule["rule_id"])["alert_id"])
    assert alert["deliveries"][0]["status"] == "delivered", alert["deliveries"]
    (mail,) = [m for m in world.smtp.messages if m.rcpt_tos == [to]]
    assert mail.mail_from == "alerts@narrate.test"
    content = mail.content.decode()
    assert f"[Narrate warning] {world.deployment}: latency_p95 alert" in content
    assert alert["alert_id"] in content


def test_email_to_a_server_that_is_down_fails_after_every_attempt(world: World) -> None:
    from tests.support.servers import free_port

    rule = _rule(world, channels=[{"type": "email", "to": "ops@example.com"}])
    found = _check(world, rule["rule_id"])
    _settled(world, found["alert_id"])
    closed = world.container.settings.model_copy(update={"smtp_port": free_port()})
    container = Container(closed, world.container.db, world.container.blobs)
    (delivery_id,) = alert_delivery.deliver_alert(container, found["alert_id"])
    delivery = next(
        d for d in _alert(world, found["alert_id"])["deliveries"] if d["delivery_id"] == delivery_id
    )
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert "ConnectionRefusedError" in delivery["last_error"]


# --- history and visibility ---------------------------------------------------------------


def test_acknowledge_then_resolve_and_not_twice(world: World) -> None:
    rule = _rule(world)
    alert_id = _check(world, rule["rule_id"])["alert_id"]
    r = world.owner.post(f"{API}/alerts/{alert_id}/acknowledge")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "acknowledged" and r.json()["acknowledged_by"] == world.alice_id
    # Still firing: an acknowledged alert keeps grouping.
    assert _check(world, rule["rule_id"])["alert_id"] == alert_id
    r = world.owner.post(f"{API}/alerts/{alert_id}/resolve")
    assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == world.alice_id
    for action in ("resolve", "acknowledge"):
        again = world.owner.post(f"{API}/alerts/{alert_id}/{action}")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "alert_resolved"
        assert again.json()["error"]["details"] == {"alert_id": alert_id}
    listed = world.owner.get(
        f"{API}/alerts", params={"status": "resolved", "deployment": world.deployment, "limit": 500}
    ).json()
    assert alert_id in {a["alert_id"] for a in listed["items"]}
    assert all(a["status"] == "resolved" for a in listed["items"])


def test_only_the_owner_and_admins_see_rules_and_alerts(world: World) -> None:
    rule = _rule(world)
    rule_id = rule["rule_id"]
    alert_id = _check(world, rule_id)["alert_id"]
    for method, path, body in [
        ("GET", f"/alert-rules/{rule_id}", None),
        ("PATCH", f"/alert-rules/{rule_id}", {"severity": "info"}),
        ("POST", f"/alert-rules/{rule_id}/check", None),
        ("DELETE", f"/alert-rules/{rule_id}", None),
        ("GET", f"/alerts/{alert_id}", None),
        ("POST", f"/alerts/{alert_id}/acknowledge", None),
        ("POST", f"/alerts/{alert_id}/resolve", None),
    ]:
        r = world.other.request(method, f"{API}{path}", json=body)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    assert world.other.get(f"{API}/alert-rules").json()["total"] == 0
    assert world.other.get(f"{API}/alerts").json()["total"] == 0
    # Bob cannot put a rule on Alice's deployment either.
    r = world.other.post(
        f"{API}/alert-rules",
        json={
            "deployment": world.deployment,
            "kind": "job_failures",
            "channels": [{"type": "in_app"}],
        },
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_deployment"
    assert world.admin.get(f"{API}/alert-rules/{rule_id}").status_code == 200
    assert world.admin.get(f"{API}/alerts/{alert_id}").status_code == 200
    assert world.owner.delete(f"{API}/alert-rules/{rule_id}").status_code == 204
    gone = world.owner.get(f"{API}/alert-rules/{rule_id}")
    assert gone.status_code == 404 and "deleted" in gone.json()["error"]["message"]
    # Its alerts stay in the history; the open one is resolved, as nothing checks it now.
    kept = world.owner.get(f"{API}/alerts/{alert_id}")
    assert kept.status_code == 200
    assert kept.json()["status"] == "resolved" and kept.json()["resolved_by"] == "rule_deleted"


def _failed_jobs(world: World, deployment: str, *kinds: str) -> list[str]:
    """Jobs of these kinds recorded as failed just now for the deployment."""
    from narrate.jobs.records import create_job
    from narrate.storage.sql.tables import Job, utcnow

    with world.container.db.session() as s:
        deployment_id = s.scalar(
            text("SELECT id FROM deployments WHERE name = :n"), {"n": deployment}
        )
    ids = [
        create_job(world.container.db, world.alice_id, kind, {"deployment_id": deployment_id})
        for kind in kinds
    ]
    with world.container.db.session() as s:
        for job_id in ids:
            job = s.get(Job, job_id)
            assert job is not None
            job.status, job.finished_at = "failed", utcnow()
    return ids


def test_rules_and_alerts_of_an_undeployed_deployment_are_hidden_until_restored(
    world: World,
) -> None:
    name = "alerts-gone-" + uuid.uuid4().hex[:6]
    r = world.owner.post(
        f"{API}/deployments", json={"name": name, "model_version_id": world.model_version_id}
    )
    assert r.status_code == 201, r.text
    rule = _rule(world, deployment=name, kind="job_failures", threshold=None)
    assert rule["threshold"] == 1.0
    rule_id = rule["rule_id"]
    _failed_jobs(world, name, "deployment.batch")
    alert_id = _check(world, rule_id)["alert_id"]
    assert alert_id is not None
    assert world.owner.delete(f"{API}/deployments/{name}").status_code in {200, 204}
    for method, path, body in [
        ("GET", f"/alert-rules/{rule_id}", None),
        ("PATCH", f"/alert-rules/{rule_id}", {"severity": "info"}),
        ("POST", f"/alert-rules/{rule_id}/check", None),
        ("DELETE", f"/alert-rules/{rule_id}", None),
        ("GET", f"/alerts/{alert_id}", None),
        ("POST", f"/alerts/{alert_id}/acknowledge", None),
        ("POST", f"/alerts/{alert_id}/resolve", None),
    ]:
        for client in (world.owner, world.admin):
            hidden = client.request(method, f"{API}{path}", json=body)
            assert hidden.status_code == 404, (method, path, hidden.text)
    hint = world.owner.get(f"{API}/alert-rules/{rule_id}").json()["error"]["hint"]
    assert f"/deployments/{name}/restore" in hint
    assert world.owner.get(f"{API}/alert-rules", params={"deployment": name}).json()["total"] == 0
    assert world.owner.get(f"{API}/alerts", params={"deployment": name}).json()["total"] == 0
    assert world.owner.post(f"{API}/deployments/{name}/restore").status_code == 200
    assert world.owner.get(f"{API}/alert-rules/{rule_id}").status_code == 200
    assert world.owner.get(f"{API}/alerts/{alert_id}").status_code == 200


def test_job_failures_rule_counts_failed_jobs_of_the_deployment(world: World) -> None:
    rule = _rule(world, kind="job_failures", threshold=2)
    assert _check(world, rule["rule_id"])["firing"] is False
    ids = _failed_jobs(world, world.deployment, "deployment.batch", "drift.report", "training")
    found = _check(world, rule["rule_id"])
    assert found["firing"] is True and found["facts"]["count"] == 2  # training is not counted
    assert sorted(found["facts"]["failed_jobs"]) == sorted(ids[:2])
    # No new failure by the next check: the alert resolves itself.
    assert _check(world, rule["rule_id"])["action"] == "resolved"


# --- end to end ---------------------------------------------------------------------------


def test_drift_report_on_shifted_traffic_alerts_the_webhook_and_mailbox(world: World) -> None:
    path = "/drift-" + uuid.uuid4().hex[:6]
    to = f"drift-{uuid.uuid4().hex[:6]}@example.com"
    rule = _rule(
        world,
        kind="drift",
        threshold=None,
        level="medium",
        channels=[
            {"type": "webhook", "url": world.hooks.url(path), "secret": SECRET},
            {"type": "email", "to": to},
            {"type": "in_app"},
        ],
    )
    assert rule["level"] == "medium" and rule["threshold"] is None
    assert _check(world, rule["rule_id"])["firing"] is False  # no report yet
    r = world.owner.post(f"{API}/deployments/{world.deployment}/predict", json={"rows": world.rows})
    assert r.status_code == 200, r.text
    started = world.owner.post(f"{API}/deployments/{world.deployment}/drift", json={"window": "1h"})
    assert started.status_code == 202, started.text
    job = wait_job(world.owner, started.json()["job_id"])
    assert job["status"] == "succeeded", job
    report_id = started.json()["created_id"]
    # The drift job evaluated the rule as soon as it stored the report.
    (request,) = wait_for(lambda: world.hooks.at(path))
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-narrate-signature"] == expected
    payload = json.loads(request.body)
    assert payload["kind"] == "drift" and payload["deployment"] == world.deployment
    assert payload["facts"]["report_id"] == report_id
    assert payload["facts"]["level"] in {"medium", "high"}
    assert "Income" in payload["facts"]["most_drifted"]
    assert "Income" in payload["message"]
    mail = wait_for(lambda: [m for m in world.smtp.messages if m.rcpt_tos == [to]])
    assert payload["alert_id"] in mail[0].content.decode()
    # Checking again finds the same report: grouped, nothing sent twice.
    again = _check(world, rule["rule_id"])
    assert again["firing"] is True and again["action"] == "grouped"
    assert again["alert_id"] == payload["alert_id"] and not again["delivering"]
    alert = _alert(world, payload["alert_id"])
    assert alert["count"] == 1 and alert["status"] == "open"
    assert sorted(d["channel"] for d in alert["deliveries"]) == ["email", "in_app", "webhook"]
    assert {d["status"] for d in alert["deliveries"]} == {"delivered"}
    assert len(world.hooks.at(path)) == 1


def test_performance_rule_fires_when_live_accuracy_drops(world: World) -> None:
    name = "alerts-perf-" + uuid.uuid4().hex[:6]
    r = world.owner.post(
        f"{API}/deployments", json={"name": name, "model_version_id": world.model_version_id}
    )
    assert r.status_code == 201, r.text
    rule = _rule(world, deployment=name, kind="performance", threshold=0.1, window_minutes=60)
    quiet = _check(world, rule["rule_id"])
    assert quiet["firing"] is False and quiet["facts"]["labelled"] == 0
    frame = pd.read_csv(SAMPLES / "credit_data.csv").iloc[:150]
    rows = [
        {k: (None if pd.isna(v) else v) for k, v in row.items() if k != TARGET}
        for row in frame.to_dict(orient="records")
    ]
    r = world.owner.post(f"{API}/deployments/{name}/predict", json={"rows": rows})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    classes = sorted(predictions[0]["probabilities"])
    flipped = [classes[1 - classes.index(str(t))] for t in frame[TARGET]]
    body = {
        "actuals": [
            {"prediction_id": p["prediction_id"], "actual": f}
            for p, f in zip(predictions, flipped, strict=True)
        ]
    }
    r = world.owner.post(f"{API}/deployments/{name}/actuals", json=body)
    assert r.status_code == 200, r.text
    found = _check(world, rule["rule_id"])
    assert found["firing"] is True and found["action"] == "opened", found
    assert found["facts"]["labelled"] == 150
    drop = found["facts"]["degradation"]
    assert drop["threshold"] == pytest.approx(0.1)
    assert drop["relative_drop"] > 0.1
    assert "degraded" in found["message"]


def test_cli_lists_the_alerts_of_a_deployment(world: World) -> None:
    import os

    from typer.testing import CliRunner

    from narrate.cli import app

    rule = _rule(world, severity="critical")
    alert_id = _check(world, rule["rule_id"])["alert_id"]
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("NARRATE_")}
    env["NARRATE_DATA_DIR"] = str(world.container.settings.data_dir)
    env["NARRATE_DATABASE_URL"] = world.container.settings.resolved_database_url
    args = ["alerts", "list", "--deployment", world.deployment, "--as", "alice"]
    result = CliRunner().invoke(app, [*args, "--json", "--status", "open"], env=env)
    assert result.exit_code == 0, result.output
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert alert_id in {i["alert_id"] for i in items}
    assert {i["status"] for i in items} == {"open"}
    assert {i["deployment"] for i in items} == {world.deployment}
    plain = CliRunner().invoke(app, args, env=env)
    assert plain.exit_code == 0, plain.output
    line = next(x for x in plain.stdout.splitlines() if alert_id in x)
    assert "critical" in line and "latency_p95" in line
    # Bob owns no alerts; a bad status is refused naming the option.
    bob = CliRunner().invoke(app, ["alerts", "list", "--as", "bob"], env=env)
    assert bob.exit_code == 0 and bob.stdout.strip() == "No alerts."
    bad = CliRunner().invoke(app, ["alerts", "list", "--status", "loud"], env=env)
    assert bad.exit_code == 2 and "--status" in bad.output


def test_the_server_checks_enabled_rules_every_alert_check_interval(world: World) -> None:
    from narrate.web.app import create_app

    path = "/periodic-" + uuid.uuid4().hex[:6]
    rule = _rule(world, channels=[{"type": "webhook", "url": world.hooks.url(path)}])
    # A second server process on the same database, checking every second.
    fast = world.container.settings.model_copy(update={"alert_check_s": 1.0})
    container = Container(fast, world.container.db, world.container.blobs)
    server = AppServer(create_app(fast, container)).start()
    try:
        (request,) = wait_for(lambda: world.hooks.at(path))
    finally:
        server.stop()
    assert json.loads(request.body)["rule_id"] == rule["rule_id"]
    listed = world.owner.get(f"{API}/alerts", params={"deployment": world.deployment, "limit": 500})
    assert rule["rule_id"] in {a["rule_id"] for a in listed.json()["items"]}
