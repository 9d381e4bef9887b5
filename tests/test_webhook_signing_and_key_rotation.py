"""Webhooks signed per Standard Webhooks (webhook-id/-timestamp/-signature, verified here independently of the
app's code) next to the legacy X-Cutover-Signature; CREDENTIALS_KEY rotation with several Fernet keys and the
``rotate-credentials`` command; a bad key refused at start."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from conftest import ADMIN, client_as, make_migration, make_workload, wait_until
from conftest import start_workers
from test_event_delivery import Receiver, post_event, settled

from webapp import create_app
from webapp.workers import SimpleAppWorker

WHSEC_KEY = b"\x00\x01binary key bytes \xff\xfe that are not utf-8 \x80"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
PLAIN = "plain-hook-s3cret"


def spec_signature(key: bytes, headers: dict, body: bytes) -> str:
    """The Standard Webhooks algorithm, written from the specification."""
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def verify(hit: dict, key: bytes, legacy_secret: str, event_id: str) -> None:
    headers, body = {k.lower(): v for k, v in hit["headers"].items()}, hit["body"]
    assert headers["webhook-id"] == event_id
    assert headers["webhook-timestamp"].isdigit()
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 10
    # the header may carry several space-separated signatures; ours must be among them
    assert spec_signature(key, headers, body) in headers["webhook-signature"].split(" ")
    assert spec_signature(b"wrong key", headers, body) not in headers["webhook-signature"].split(" ")
    assert headers["x-cutover-signature"] == "sha256=" + hmac.new(legacy_secret.encode(), body,
                                                                  hashlib.sha256).hexdigest()


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.mark.slow
def test_a_real_worker_signs_the_webhook_per_standard_webhooks_with_a_whsec_secret(config, client, worker_processes,
                                                                                  hook):
    start_workers(config, worker_processes, NOTIFY_WEBHOOK_URL=hook.url, NOTIFY_WEBHOOK_SECRET=WHSEC)
    created = post_event(client, user_id="carol", description="Ünïcode ✓ and \"quotes\"")
    assert wait_until(lambda: settled(client, created["id"]), 5)["status"] == "processed"
    (hit,) = hook.hits
    verify(hit, WHSEC_KEY, WHSEC, created["id"])
    assert json.loads(hit["body"]) == created  # the signed bytes are the bytes sent


def test_a_plain_secret_is_used_as_its_utf8_bytes(app, client, work, hook):
    app.config.update(NOTIFY_WEBHOOK_URL=hook.url, NOTIFY_WEBHOOK_SECRET=PLAIN)
    created = post_event(client)
    work()
    (hit,) = hook.hits
    verify(hit, PLAIN.encode(), PLAIN, created["id"])


def test_retries_keep_the_webhook_id_and_each_attempt_is_signed(app, client, work, hook, monkeypatch):
    from webapp.events import channels

    monkeypatch.setattr(channels.post_webhook, "__defaults__", (lambda seconds: None,))  # no back-off here
    hook.status = 500
    app.config.update(NOTIFY_WEBHOOK_URL=hook.url, NOTIFY_WEBHOOK_SECRET=WHSEC)
    created = post_event(client)
    work()
    assert len(hook.hits) == 3
    for hit in hook.hits:
        verify(hit, WHSEC_KEY, WHSEC, created["id"])


# --- CREDENTIALS_KEY rotation -------------------------------------------------------------------------

def stored_passwords(app) -> list[str]:
    """Every stored secret, read through the vault."""
    from webapp.extensions import db, vault
    from webapp.models import MigrationRow, WorkloadRow

    with app.app_context():
        out = [vault.decrypt(w.password_enc) for w in db.session.scalars(select(WorkloadRow).order_by(WorkloadRow.id))]
        for m in db.session.scalars(select(MigrationRow).order_by(MigrationRow.id)):
            out.append(vault.decrypt(m.cloud_password_enc))
            if m.target_vm:
                out.append(vault.decrypt(m.target_vm["credentials"]["password_enc"]))
        return out


def raw_tokens(app) -> list[str]:
    from webapp.extensions import db
    from webapp.models import MigrationRow, WorkloadRow

    with app.app_context():
        return ([w.password_enc for w in db.session.scalars(select(WorkloadRow))]
                + [m.cloud_password_enc for m in db.session.scalars(select(MigrationRow))])


def restart(config, key: str):
    return create_app({**config, "CREDENTIALS_KEY": key})


def test_credentials_key_rotation(config):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = restart(config, key_a)
    client = client_as(first, ADMIN)
    source = make_workload(client)
    other = make_workload(client, ip="10.0.0.11", credentials={"username": "u", "password": "другой ✓"})
    done = make_migration(client, source["id"])
    pending = make_migration(client, other["id"])
    assert client.post(f"/api/v1/migrations/{done['id']}/run", json={}).status_code == 202
    SimpleAppWorker(["default"], connection=first.extensions["redis"], app=first).work(burst=True)
    assert client.get(f"/api/v1/migrations/{done['id']}").json["state"] == "success"
    expected = stored_passwords(first)
    assert len(expected) == 5 and "другой ✓" in expected  # 2 workloads, 2 cloud passwords, 1 target VM
    page_a = client.get(f"/migrations/{pending['id']}")
    assert page_a.status_code == 200
    first.extensions["db"].kw["bind"].dispose()

    both = restart(config, f"{key_b}, {key_a}")  # the new key first: it encrypts, both decrypt
    assert stored_passwords(both) == expected
    browser = client_as(both, ADMIN)
    for m in (done, pending):  # the pages that decrypt (preview) still work
        assert browser.get(f"/migrations/{m['id']}").status_code == 200
    assert browser.patch(f"/api/v1/workloads/{source['id']}",
                         json={"storage": [{"name": "C:\\", "size": 40}]}).status_code == 200
    before = raw_tokens(both)
    workload_before = browser.get(f"/api/v1/workloads/{other['id']}").json
    result = both.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 5 stored secrets" in result.output
    assert not set(raw_tokens(both)) & set(before)
    assert browser.get(f"/api/v1/workloads/{other['id']}").json == workload_before  # updated_at kept
    entries = browser.get("/api/v1/audit?action=credentials.rotate").json["items"]
    assert [(e["actor"], e["via"], e["details"]) for e in entries] == [("system", "cli", {"count": 5})]
    both.extensions["db"].kw["bind"].dispose()

    only_b = restart(config, key_b)
    assert stored_passwords(only_b) == expected
    assert client_as(only_b, ADMIN).get(f"/migrations/{pending['id']}").status_code == 200
    only_b.extensions["db"].kw["bind"].dispose()

    only_a = restart(config, key_a)
    with pytest.raises(RuntimeError, match="CREDENTIALS_KEY"):
        stored_passwords(only_a)
    result = only_a.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "cannot be read with any key of CREDENTIALS_KEY" in result.output
    assert "Traceback" not in result.output
    only_a.extensions["db"].kw["bind"].dispose()
    assert stored_passwords(restart(config, key_b)) == expected  # the failed run changed nothing


def test_an_action_that_needs_a_password_stored_under_a_dropped_key_says_so_without_a_500(config):
    with_a = restart(config, Fernet.generate_key().decode())
    admin = client_as(with_a, ADMIN)
    workload = make_workload(admin)
    migration = make_migration(admin, workload["id"])
    with_a.extensions["db"].kw["bind"].dispose()
    admin = client_as(restart(config, Fernet.generate_key().decode()), ADMIN)  # the old key dropped too early
    assert admin.get(f"/migrations/{migration['id']}").status_code == 200  # showing needs no password
    ran = admin.post(f"/api/v1/migrations/{migration['id']}/run")  # its preflight finds the passwords unreadable
    assert ran.status_code == 422 and ran.json["error"]["code"] == "preflight_failed", ran.json
    assert [c["name"] for c in ran.json["error"]["checks"]] == ["credentials"]
    assert "CREDENTIALS_KEY" in ran.json["error"]["message"]
    edited = admin.patch(f"/api/v1/workloads/{workload['id']}", json={"credentials": {"username": "other"}})
    assert edited.status_code == 503 and edited.json["error"]["code"] == "secret_unreadable", edited.json
    page = admin.post(f"/migrations/{migration['id']}/run", follow_redirects=True)  # the refusal beside Run
    assert page.status_code == 200 and "cannot be read with the current CREDENTIALS_KEY" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    assert admin.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "not_started"  # nothing changed
    assert admin.get(f"/api/v1/workloads/{workload['id']}").json["credentials"]["username"] == "admin"


def test_rotate_with_nothing_stored_reports_zero(app):
    result = app.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 0 and "Re-encrypted 0 stored secrets" in result.output


GOOD_KEY = "x2GPuXCUhbNd-mlyzZb9e3ceYCQhrLsnV3QvE5R3s0Y="  # fixed: same test ids on every xdist worker


@pytest.mark.parametrize("bad", ["not-a-fernet-key", f"{GOOD_KEY},short", " , "])
def test_a_bad_credentials_key_fails_at_start_with_a_clear_message(config, bad):
    with pytest.raises(RuntimeError, match="CREDENTIALS_KEY") as info:
        create_app({**config, "CREDENTIALS_KEY": bad})
    assert "Fernet key" in str(info.value)
