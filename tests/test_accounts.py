"""Accounts as people and scripts use them: signing in and out, throttling, disabled accounts, API tokens,
the users API, runs acting as the caller, the first admin, the ``users`` CLI and the account pages."""
from __future__ import annotations

import base64
import html
import re
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from conftest import ADMIN, ADMIN_PASSWORD, PASSWORD, WORKLOAD, client_as, make_user
from webapp import create_app
from webapp.db import Base, update, utcnow

PASSING = "sample_tests/test_passing.py"
LOGIN_FAILED = "Wrong username or password."


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def login(client, username: str, password: str, next_url: str | None = None, **kwargs):
    url = "/login" + (f"?next={quote(next_url, safe='')}" if next_url is not None else "")
    return client.post(url, data={"username": username, "password": password, "save": "Sign in"}, **kwargs)


def field_errors(page: str, field_id: str) -> str:
    """The error list shown beside the field ``field_id`` ('' when there is none)."""
    found = re.search(rf'<ul class="errors" id="{re.escape(field_id)}-error">(.*?)</ul>', page, re.S)
    return html.unescape(found.group(1)) if found else ""


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.data[:300])
    body = response.json["error"]
    assert set(body) == {"code", "message", "fields"} and body["code"] == code, body
    return body


def session_cookie(client):
    return client.get_cookie("session")


def db_session(app):
    from webapp.extensions import db

    return db.session


def user_row(app, username):
    from webapp.models import UserRow

    with app.app_context():
        row = db_session(app).scalar(select(UserRow).where(UserRow.username == username))
        db_session(app).expunge_all()
        return row


# --- signing in -------------------------------------------------------------------------------------------

def test_sign_in_with_the_right_password_lands_on_the_dashboard(app, anon_client):
    response = login(anon_client, ADMIN, ADMIN_PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    page = anon_client.get("/")
    assert page.status_code == 200 and "admin · admin" in text(page)
    assert user_row(app, ADMIN).last_login_at is not None


def test_the_sign_in_page_renders_for_anyone(anon_client):
    page = anon_client.get("/login")
    assert page.status_code == 200 and 'name="username"' in text(page) and 'name="password"' in text(page)


def test_a_wrong_password_and_an_unknown_user_look_the_same(app, anon_client):
    wrong = login(anon_client, ADMIN, "not-the-password")
    unknown = login(anon_client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    for response in (wrong, unknown):
        assert LOGIN_FAILED in text(response)
    # the same words and layout: only the echoed username differs (and the CSRF token's signing second,
    # which ticks over when the two requests straddle a second: its session part must still be the same)
    def without_echo(response):
        page = re.sub(r'(name="username"[^>]*?value=")[^"]*"', r'\1"', text(response))
        return re.sub(r'(X-CSRFToken": "|name="csrf_token" type="hidden" value=")([\w-]+)\.[\w-]+\.[\w-]+"',
                      r'\1\2.<signed-at>.<signature>"', page)

    assert without_echo(wrong) == without_echo(unknown)
    assert anon_client.get("/").status_code == 302  # still signed out
    # and over HTTP Basic alike
    api_wrong = anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic(ADMIN, "nope-nope"))
    api_unknown = anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic("nobody-here", "nope-nope"))
    assert error_of(api_wrong, 401, "unauthorized") == error_of(api_unknown, 401, "unauthorized")


def test_the_username_is_not_case_sensitive_at_sign_in(anon_client):
    assert login(anon_client, "  ADMIN ", ADMIN_PASSWORD).status_code == 303


def test_a_disabled_account_cannot_sign_in_and_is_told_nothing_more(app, client, anon_client):
    make_user(app, "gone", "viewer")
    assert client.patch("/api/v1/users/gone", json={"disabled": True}).status_code == 200
    response = login(anon_client, "gone", PASSWORD)
    assert response.status_code == 401 and LOGIN_FAILED in text(response)


@pytest.mark.parametrize("next_url, lands_on", [
    ("/runs/", "/runs/"),
    ("/runs/?state=queued&page=2", "/runs/?state=queued&page=2"),
    ("/account", "/account"),
    ("//evil.com", "/"),
    ("//evil.com/runs/", "/"),
    ("https://evil.com", "/"),
    ("http://evil.com/", "/"),
    ("/\\evil.com", "/"),
    ("\\\\evil.com", "/"),
    ("/\tevil.com", "/"),
    ("javascript:alert(1)", "/"),
    ("evil.com", "/"),
    ("", "/"),
])
def test_after_sign_in_only_a_same_site_next_url_is_followed(anon_client, next_url, lands_on):
    response = login(anon_client, ADMIN, ADMIN_PASSWORD, next_url)
    assert response.status_code == 303
    assert response.headers["Location"] == lands_on


def test_the_next_url_survives_a_failed_attempt_and_the_redirect_from_a_page(anon_client):
    sent = anon_client.get("/runs/?state=queued")
    assert sent.status_code == 302
    login_url = sent.headers["Location"]
    assert anon_client.post(login_url, data={"username": ADMIN, "password": "wrong-one", "save": "1"}).status_code == 401
    response = anon_client.post(login_url, data={"username": ADMIN, "password": ADMIN_PASSWORD, "save": "1"})
    assert response.headers["Location"] == "/runs/?state=queued"


def set_cookie_of(response, name="session") -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    assert cookies, response.headers
    return cookies[-1]


def test_the_session_cookie_is_httponly_lax_and_not_secure_over_http(anon_client):
    cookie = set_cookie_of(login(anon_client, ADMIN, ADMIN_PASSWORD))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "httponly" in attributes and "samesite=lax" in attributes
    assert "secure" not in attributes


def test_the_session_cookie_is_secure_over_https(app):
    client = app.test_client()
    response = client.post("/login", base_url="https://localhost",
                           data={"username": ADMIN, "password": ADMIN_PASSWORD, "save": "1"})
    assert response.status_code == 303
    attributes = [a.strip().lower() for a in set_cookie_of(response).split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes


def test_the_session_is_rotated_at_sign_in(app):
    client = app.test_client()
    with client.session_transaction() as session:
        session["planted"] = "by-an-attacker"  # a session fixed before sign-in
    before = session_cookie(client).value
    assert login(client, ADMIN, ADMIN_PASSWORD).status_code == 303
    after = session_cookie(client).value
    assert after != before
    with client.session_transaction() as session:
        assert "planted" not in session  # nothing of the old session is carried over
    # the pre-login cookie does not carry the login
    old = app.test_client()
    old.set_cookie("session", before)
    assert old.get("/").status_code == 302
    fresh = app.test_client()
    fresh.set_cookie("session", after)
    assert fresh.get("/").status_code == 200


def test_logout_ends_the_session(app, anon_client):
    login(anon_client, ADMIN, ADMIN_PASSWORD)
    assert anon_client.get("/").status_code == 200
    response = anon_client.post("/logout")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert anon_client.get("/").status_code == 302
    assert anon_client.get("/account").status_code == 302


def test_logout_ends_the_session_even_in_a_copy_of_its_cookie(app, anon_client):
    login(anon_client, ADMIN, ADMIN_PASSWORD)
    copied = session_cookie(anon_client).value
    elsewhere = app.test_client()
    elsewhere.set_cookie("session", copied)
    assert elsewhere.get("/").status_code == 200
    other_device = app.test_client()
    login(other_device, ADMIN, ADMIN_PASSWORD)
    anon_client.post("/logout")
    assert elsewhere.get("/").status_code == 302  # the stolen copy stopped working with the sign-out
    assert elsewhere.get("/api/v1/me").status_code == 401
    assert other_device.get("/").status_code == 200  # another session of the same account goes on


def test_logout_is_post_only(client):
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200  # a link or an image cannot sign anyone out


# --- throttling -------------------------------------------------------------------------------------------

def fail(client, username, times=5, **kwargs):
    for _ in range(times):
        assert login(client, username, "wrong-password", **kwargs).status_code == 401


def assert_throttled_page(response):
    assert response.status_code == 429, response.status_code
    assert int(response.headers["Retry-After"]) >= 1
    assert "Too many failed sign-ins" in text(response)


def test_five_failures_for_a_username_throttle_even_the_right_password(app, anon_client):
    fail(anon_client, ADMIN)
    assert_throttled_page(login(anon_client, ADMIN, ADMIN_PASSWORD))
    assert anon_client.get("/").status_code == 302
    # another account from another address is not held up
    make_user(app, "other", "viewer")
    other = app.test_client()
    assert login(other, "other", PASSWORD, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 303


def test_the_username_throttle_holds_from_any_address_and_any_case(app):
    client = app.test_client()
    for n in range(5):
        assert login(client, "Admin" if n % 2 else ADMIN, "wrong-pw",
                     environ_base={"REMOTE_ADDR": f"10.0.1.{n}"}).status_code == 401
    assert_throttled_page(login(client, ADMIN, ADMIN_PASSWORD, environ_base={"REMOTE_ADDR": "10.0.2.1"}))


def test_basic_auth_on_the_token_endpoint_is_throttled_too(app, anon_client):
    for _ in range(5):
        error_of(anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic(ADMIN, "wrong-pw")),
                 401, "unauthorized")
    response = anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic(ADMIN, ADMIN_PASSWORD))
    error_of(response, 429, "too_many_attempts")
    assert int(response.headers["Retry-After"]) >= 1
    assert_throttled_page(login(anon_client, ADMIN, ADMIN_PASSWORD))  # the page and the API share the count


def test_page_failures_count_for_basic_auth(anon_client):
    fail(anon_client, ADMIN)
    response = anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic(ADMIN, ADMIN_PASSWORD))
    error_of(response, 429, "too_many_attempts")


def test_failures_from_one_address_throttle_it_for_every_username(app):
    make_user(app, "carol", "viewer")
    attacker = {"REMOTE_ADDR": "203.0.113.7"}
    client = app.test_client()
    for n in range(5):
        assert login(client, f"guess-{n}", "wrong-pw", environ_base=attacker).status_code == 401
    assert_throttled_page(login(client, "carol", PASSWORD, environ_base=attacker))
    api = client.post("/api/v1/tokens", json={"name": "x"}, headers=basic("carol", PASSWORD), environ_base=attacker)
    error_of(api, 429, "too_many_attempts")
    # carol from her own address is fine: the address was throttled, not her account
    assert login(app.test_client(), "carol", PASSWORD, environ_base={"REMOTE_ADDR": "198.51.100.1"}).status_code == 303


def test_four_failures_do_not_throttle(anon_client):
    fail(anon_client, ADMIN, times=4)
    assert login(anon_client, ADMIN, ADMIN_PASSWORD).status_code == 303


def test_the_count_is_kept_in_redis_and_shared_by_every_app(app, config):
    fail(app.test_client(), ADMIN)
    second = create_app(config)
    try:
        assert_throttled_page(login(second.test_client(), ADMIN, ADMIN_PASSWORD))
        keys = [k.decode() for k in second.extensions["redis"].keys("*")]
        assert any(ADMIN in k for k in keys), keys
        assert all(second.extensions["redis"].ttl(k) <= 60 for k in keys if ADMIN in k)
    finally:
        second.extensions["db"].kw["bind"].dispose()


def test_the_throttle_ends_after_its_window(app, anon_client):
    fail(anon_client, ADMIN)
    assert_throttled_page(login(anon_client, ADMIN, ADMIN_PASSWORD))
    redis = app.extensions["redis"]
    for key in redis.keys("*"):
        redis.delete(key)  # as the window's expiry would
    assert login(anon_client, ADMIN, ADMIN_PASSWORD).status_code == 303


# --- disabled accounts and password changes --------------------------------------------------------------

def test_a_disabled_account_is_refused_at_once_by_token_and_by_session(app, client):
    user = client_as(app, "dora", "operator")
    assert user.get("/api/v1/me").status_code == 200 and user.get("/").status_code == 200
    assert client.patch("/api/v1/users/dora", json={"disabled": True}).status_code == 200
    error_of(user.get("/api/v1/me"), 401, "unauthorized")
    response = user.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # enabled again: the token works again, the old session stays ended
    assert client.patch("/api/v1/users/dora", json={"disabled": False}).status_code == 200
    assert user.get("/api/v1/me").status_code == 200
    assert user.get("/").status_code == 302


def test_changing_a_password_signs_out_the_other_sessions(app):
    make_user(app, "erin", "viewer")
    laptop, phone = app.test_client(), app.test_client()
    assert login(laptop, "erin", PASSWORD).status_code == 303
    assert login(phone, "erin", PASSWORD).status_code == 303
    changed = laptop.post("/account", data={"pw-current_password": PASSWORD, "pw-new_password": "brand-new-pw-1",
                                            "pw-save": "Change password"})
    assert changed.status_code == 303
    assert laptop.get("/").status_code == 200  # this one stays signed in
    assert phone.get("/").status_code == 302  # the other is signed out
    assert login(app.test_client(), "erin", PASSWORD).status_code == 401
    assert login(app.test_client(), "erin", "brand-new-pw-1").status_code == 303


def test_an_admin_setting_a_password_signs_out_the_accounts_sessions(app, client):
    user = client_as(app, "finn", "viewer")
    assert user.get("/").status_code == 200
    assert client.patch("/api/v1/users/finn", json={"password": "set-by-admin-1"}).status_code == 200
    assert user.get("/").status_code == 302
    assert user.get("/api/v1/me").status_code == 200  # tokens are not passwords: they keep working
    assert login(app.test_client(), "finn", "set-by-admin-1").status_code == 303


# --- API tokens ----------------------------------------------------------------------------------------------

TOKEN_KEYS = {"id", "name", "role", "user", "prefix", "created_at", "expires_at", "last_used_at", "revoked"}


def test_a_script_gets_its_first_token_with_basic_auth(app, anon_client):
    make_user(app, "ci-bot", "operator")
    response = anon_client.post("/api/v1/tokens", json={"name": "ci"}, headers=basic("ci-bot", PASSWORD))
    assert response.status_code == 201, response.json
    body = response.json
    assert set(body) == TOKEN_KEYS | {"token"}
    assert body["token"].startswith("cut_") and body["prefix"] == body["token"][:8]
    assert body["role"] == "operator" and body["user"] == "ci-bot" and body["expires_at"] is None
    assert response.headers["Location"].endswith("/api/v1/tokens")
    me = anon_client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.json["username"] == "ci-bot"
    # shown once: never in the list
    listed = anon_client.get("/api/v1/tokens", headers=bearer(body["token"])).json["items"]
    assert [t["name"] for t in listed] == ["ci"]
    assert all(set(t) == TOKEN_KEYS for t in listed) and body["token"] not in str(listed)


def test_basic_auth_without_a_body_is_asked_for_the_name(app, client, anon_client):
    response = anon_client.post("/api/v1/tokens", headers=basic(ADMIN, ADMIN_PASSWORD))
    assert list(error_of(response, 422, "validation_error")["fields"]) == ["name"]
    assert len(client.get("/api/v1/tokens").json["items"]) == 1


def test_basic_auth_with_a_wrong_password_is_401(anon_client):
    error_of(anon_client.post("/api/v1/tokens", json={"name": "x"}, headers=basic(ADMIN, "wrong")), 401,
             "unauthorized")
    response = anon_client.post("/api/v1/tokens", json={"name": "x"},
                                headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()})
    error_of(response, 401, "unauthorized")


@pytest.mark.parametrize("role, asked", [("viewer", "operator"), ("viewer", "admin"), ("operator", "admin")])
def test_a_token_above_its_owners_role_is_refused(app, as_role, role, asked):
    user = as_role(role)
    error = error_of(user.post("/api/v1/tokens", json={"name": "up", "role": asked}), 422, "validation_error")
    assert list(error["fields"]) == ["role"]
    assert len(user.get("/api/v1/tokens").json["items"]) == 1


def test_a_lower_role_token_acts_with_the_lower_role(client):
    created = client.post("/api/v1/tokens", json={"name": "read-only", "role": "viewer"})
    assert created.status_code == 201 and created.json["role"] == "viewer"
    token = created.json["token"]
    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.json["role"] == "admin" and me.json["acting_role"] == "viewer"
    error_of(client.post("/api/v1/workloads", json=WORKLOAD, headers=bearer(token)), 403, "forbidden")
    error_of(client.get("/api/v1/users", headers=bearer(token)), 403, "forbidden")


def test_a_demoted_owner_demotes_its_tokens(app, client):
    user = client_as(app, "gil", "operator")
    assert user.post("/api/v1/workloads", json=WORKLOAD).status_code == 201
    assert client.patch("/api/v1/users/gil", json={"role": "viewer"}).status_code == 200
    error_of(user.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.2"}), 403, "forbidden")
    assert user.get("/api/v1/me").json["acting_role"] == "viewer"


@pytest.mark.parametrize("value", [0, -1, 3651, "soon", 1.5, True, "²"])
def test_a_bad_expiry_is_refused_on_its_field(client, value):
    error = error_of(client.post("/api/v1/tokens", json={"name": "x", "expires_in_days": value}), 422,
                     "validation_error")
    assert list(error["fields"]) == ["expires_in_days"]


@pytest.mark.parametrize("body, field", [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 65}, "name"),
                                         ({"name": "x", "role": "root"}, "role")])
def test_a_bad_token_request_is_refused_on_its_field(client, body, field):
    error = error_of(client.post("/api/v1/tokens", json=body), 422, "validation_error")
    assert field in error["fields"]


def test_a_token_with_an_expiry_stops_working_when_it_expires(app, client):
    created = client.post("/api/v1/tokens", json={"name": "short", "expires_in_days": 1})
    assert created.status_code == 201
    expires = datetime.fromisoformat(created.json["expires_at"])
    assert abs(expires - (datetime.now(timezone.utc) + timedelta(days=1))) < timedelta(minutes=1)
    token = created.json["token"]
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    from webapp.models import TokenRow

    with app.app_context():
        db_session(app).execute(update(TokenRow).where(TokenRow.id == created.json["id"])
                                .values(expires_at=utcnow() - timedelta(seconds=1)))
        db_session(app).commit()
    error_of(client.get("/api/v1/me", headers=bearer(token)), 401, "unauthorized")


def test_revoking_a_token_ends_it_at_once(client):
    created = client.post("/api/v1/tokens", json={"name": "temp"}).json
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created['id']}").status_code == 204
    error_of(client.get("/api/v1/me", headers=bearer(created["token"])), 401, "unauthorized")
    assert created["id"] not in [t["id"] for t in client.get("/api/v1/tokens").json["items"]]
    error_of(client.delete(f"/api/v1/tokens/{created['id']}"), 404, "not_found")  # once only


def test_a_token_may_revoke_itself(client):
    created = client.post("/api/v1/tokens", json={"name": "self"}).json
    response = client.delete(f"/api/v1/tokens/{created['id']}", headers=bearer(created["token"]))
    assert response.status_code == 204
    error_of(client.get("/api/v1/me", headers=bearer(created["token"])), 401, "unauthorized")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_another_accounts_token_is_not_found_for_a_non_admin(app, client, as_role, role):
    user = as_role(role)
    admin_token_id = client.get("/api/v1/tokens").json["items"][0]["id"]
    error_of(user.delete(f"/api/v1/tokens/{admin_token_id}"), 404, "not_found")
    error_of(user.delete("/api/v1/tokens/999999"), 404, "not_found")  # the same answer as for no token at all
    assert client.get("/api/v1/me").status_code == 200


def test_an_admin_lists_and_revokes_another_accounts_tokens(app, client, as_role):
    user = as_role("operator", "hana")
    listed = client.get("/api/v1/tokens?user=hana")
    assert listed.status_code == 200
    [item] = listed.json["items"]
    assert item["user"] == "hana" and "token" not in item
    everyone = client.get("/api/v1/tokens?user=*").json["items"]
    assert {t["user"] for t in everyone} == {ADMIN, "hana"}
    assert [t["user"] for t in client.get("/api/v1/tokens").json["items"]] == [ADMIN]  # own by default
    error_of(client.get("/api/v1/tokens?user=nobody"), 404, "not_found")
    assert client.delete(f"/api/v1/tokens/{item['id']}").status_code == 204
    error_of(user.get("/api/v1/me"), 401, "unauthorized")


def every_stored_value(app) -> str:
    """Every value of every row of every table, as text."""
    with app.app_context():
        parts = [repr(tuple(row)) for table in Base.metadata.sorted_tables
                 for row in db_session(app).execute(table.select())]
        db_session(app).rollback()
    return "\n".join(parts)


def test_a_token_is_never_stored_in_clear(app, client):
    created = client.post("/api/v1/tokens", json={"name": "secret"}).json
    token = created["token"]
    from webapp.models import TokenRow

    with app.app_context():
        stored = db_session(app).get(TokenRow, created["id"]).token_hash
    assert re.fullmatch(r"[0-9a-f]{64}", stored) and token not in stored
    everything = every_stored_value(app)
    assert token not in everything and token[4:] not in everything and stored in everything
    assert client.token not in everything
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
        assert token.encode() not in raw and token[4:].encode() not in raw and client.token.encode() not in raw
        assert stored.encode() in raw


def test_last_used_at_is_set_when_a_token_is_used(client):
    created = client.post("/api/v1/tokens", json={"name": "fresh"}).json
    assert created["last_used_at"] is None
    assert client.get("/api/v1/me", headers=bearer(created["token"])).status_code == 200
    [row] = [t for t in client.get("/api/v1/tokens").json["items"] if t["id"] == created["id"]]
    used = datetime.fromisoformat(row["last_used_at"])
    assert abs(used - datetime.now(timezone.utc)) < timedelta(minutes=1)


# --- the users API --------------------------------------------------------------------------------------------

USER_KEYS = {"username", "display_name", "role", "disabled", "created_at", "last_login_at"}
SECRET_PW = "the-Secret-pw-42"


def test_create_an_account_and_the_password_is_never_returned(client):
    response = client.post("/api/v1/users", json={"username": "  Ivy ", "password": SECRET_PW, "role": "operator",
                                                  "display_name": "Ivy I."})
    assert response.status_code == 201, response.json
    assert set(response.json) == USER_KEYS
    assert response.json["username"] == "ivy" and response.json["role"] == "operator"
    assert response.json["display_name"] == "Ivy I." and response.json["disabled"] is False
    assert response.headers["Location"].endswith("/api/v1/users/ivy")
    answers = [response, client.get("/api/v1/users"), client.get("/api/v1/users/ivy"),
               client.patch("/api/v1/users/ivy", json={"password": SECRET_PW + "2"}),
               client.get("/api/v1/users/IVY")]
    for answer in answers:
        assert answer.status_code in (200, 201)
        body = answer.get_data(as_text=True)
        assert SECRET_PW not in body and "password" not in body and "argon2" not in body
    assert [u["username"] for u in client.get("/api/v1/users").json["items"]] == [ADMIN, "ivy"]


def test_a_new_account_is_a_viewer_by_default(client):
    assert client.post("/api/v1/users", json={"username": "jo", "password": SECRET_PW}).json["role"] == "viewer"


@pytest.mark.parametrize("username", ["kim", "KIM", " Kim "])
def test_a_duplicate_username_is_409_whatever_its_case(client, username):
    assert client.post("/api/v1/users", json={"username": "kim", "password": SECRET_PW}).status_code == 201
    error = error_of(client.post("/api/v1/users", json={"username": username, "password": SECRET_PW}), 409,
                     "duplicate_username")
    assert list(error["fields"]) == ["username"]
    assert len(client.get("/api/v1/users").json["items"]) == 2


@pytest.mark.parametrize("body, fields", [
    ({"username": "bad name", "password": SECRET_PW}, {"username"}),
    ({"username": "", "password": SECRET_PW}, {"username"}),
    ({"username": "x" * 65, "password": SECRET_PW}, {"username"}),
    ({"username": "lee", "password": "short"}, {"password"}),
    ({"username": "lee"}, {"password"}),
    ({"username": "lee", "password": SECRET_PW, "role": "root"}, {"role"}),
    ({"username": "lee", "password": SECRET_PW, "display_name": 5}, {"display_name"}),
    ({"username": "no way", "password": "x", "role": "god"}, {"username", "password", "role"}),  # all together
])
def test_a_bad_account_is_refused_on_its_fields(client, body, fields):
    error = error_of(client.post("/api/v1/users", json=body), 422, "validation_error")
    assert set(error["fields"]) == fields
    assert len(client.get("/api/v1/users").json["items"]) == 1


def test_an_account_body_must_be_a_json_object(client):
    error_of(client.post("/api/v1/users", json=["lee"]), 400, "bad_json")
    assert client.post("/api/v1/users", data="nope", content_type="application/json").status_code == 400


def test_patch_an_accounts_role_disabled_display_name_and_password(app, client):
    make_user(app, "max", "viewer")
    url = "/api/v1/users/max"
    assert client.patch(url, json={"role": "operator"}).json["role"] == "operator"
    assert client.patch(url, json={"display_name": "Max M."}).json["display_name"] == "Max M."
    assert client.patch(url, json={"disabled": True}).json["disabled"] is True
    assert client.patch(url, json={"disabled": False}).json["disabled"] is False
    assert client.patch(url, json={"password": "max-new-pass-1"}).status_code == 200
    assert login(app.test_client(), "max", "max-new-pass-1").status_code == 303
    body = client.get(url).json
    assert body["role"] == "operator" and body["display_name"] == "Max M." and body["disabled"] is False
    # fields not sent stay as they were
    unchanged = client.patch(url, json={})
    assert unchanged.status_code == 200 and unchanged.json == client.get(url).json
    assert {k: unchanged.json[k] for k in ("role", "display_name", "disabled")} == \
        {"role": "operator", "display_name": "Max M.", "disabled": False}


@pytest.mark.parametrize("body, field", [
    ({"role": "root"}, "role"), ({"disabled": "yes"}, "disabled"), ({"password": "short"}, "password"),
    ({"username": "renamed"}, "username"), ({"shoe_size": 9}, "shoe_size"), ({"display_name": 5}, "display_name"),
])
def test_a_bad_patch_is_refused_on_its_field_and_changes_nothing(app, client, body, field):
    make_user(app, "ned", "viewer")
    before = client.get("/api/v1/users/ned").json
    error = error_of(client.patch("/api/v1/users/ned", json=body), 422, "validation_error")
    assert field in error["fields"]
    assert client.get("/api/v1/users/ned").json == before


def test_patching_an_unknown_account_is_404(client):
    error_of(client.patch("/api/v1/users/nobody", json={"role": "viewer"}), 404, "not_found")
    error_of(client.get("/api/v1/users/nobody"), 404, "not_found")


@pytest.mark.parametrize("body, field", [({"role": "operator"}, "role"), ({"role": "viewer"}, "role"),
                                         ({"disabled": True}, "disabled")])
def test_an_admin_cannot_demote_or_disable_itself(client, body, field):
    error = error_of(client.patch(f"/api/v1/users/{ADMIN}", json=body), 422, "validation_error")
    assert field in error["fields"]
    me = client.get("/api/v1/me").json
    assert me["role"] == "admin" and me["disabled"] is False


def test_an_admin_may_still_edit_its_own_name_and_demote_another_admin(app, client):
    assert client.patch(f"/api/v1/users/{ADMIN}", json={"display_name": "Root", "role": "admin"}).status_code == 200
    make_user(app, "second-admin", "admin")
    assert client.patch("/api/v1/users/second-admin", json={"role": "viewer"}).json["role"] == "viewer"


def test_me_describes_the_caller(app, as_role):
    viewer = as_role("viewer", "olga")
    me = viewer.get("/api/v1/me")
    assert me.status_code == 200
    assert set(me.json) == USER_KEYS | {"acting_role"}
    assert me.json["username"] == "olga" and me.json["role"] == "viewer" and me.json["acting_role"] == "viewer"


# --- runs and migrations act as the caller ----------------------------------------------------------------------

def test_a_run_is_the_callers(app, client, as_role):
    operator = as_role("operator", "pat")
    response = operator.post("/api/v1/runs", json={"environment_id": 1, "test_files": [PASSING]})
    assert response.status_code == 201 and response.json["username"] == "pat"
    same = operator.post("/api/v1/runs", json={"username": " PAT ", "environment_id": 2, "test_files": [PASSING]})
    assert same.status_code == 201 and same.json["username"] == "pat"
    other = operator.post("/api/v1/runs", json={"username": ADMIN, "environment_id": 3, "test_files": [PASSING]})
    error = error_of(other, 422, "validation_error")
    assert list(error["fields"]) == ["username"]
    assert client.get("/api/v1/runs").json["total"] == 2
    rerun = client.post(f"/api/v1/runs/{response.json['id']}/rerun")
    assert rerun.status_code == 201 and rerun.json["username"] == ADMIN  # a rerun is whoever asked


def test_a_run_from_the_page_is_the_signed_in_accounts(app, as_role):
    operator = as_role("operator", "quinn")
    response = operator.post("/runs/new", data={"environment_id": "4", "test_files": [PASSING], "save": "Start run"})
    assert response.status_code == 303
    assert operator.get("/api/v1/runs").json["items"][0]["username"] == "quinn"


def test_a_migration_run_is_requested_by_the_caller(app, client, as_role):
    operator = as_role("operator", "ray")
    source = operator.post("/api/v1/workloads", json=WORKLOAD).json["id"]
    target = {"cloud_type": "aws", "cloud_credentials": {"username": "c", "password": "p"}}
    migration = operator.post("/api/v1/migrations", json={"source_id": source, "selected_mount_points": ["C:\\"],
                                                          "target": target}).json
    refused = operator.post(f"/api/v1/migrations/{migration['id']}/run", json={"requested_by": ADMIN})
    assert list(error_of(refused, 422, "validation_error")["fields"]) == ["requested_by"]
    assert client.get(f"/api/v1/migrations/{migration['id']}").json["state"] == "not_started"
    response = operator.post(f"/api/v1/migrations/{migration['id']}/run")
    assert response.status_code == 202 and response.json["requested_by"] == "ray"


# --- the first admin --------------------------------------------------------------------------------------------

@pytest.fixture
def fresh_config(config, tmp_path):
    return {**config, "DATA_DIR": str(tmp_path / "fresh-data"), "ADMIN_PASSWORD": ""}


def users_in(app) -> list[str]:
    from webapp.models import UserRow

    with app.app_context():
        return list(db_session(app).scalars(select(UserRow.username).order_by(UserRow.id)))


def test_the_first_start_makes_an_admin_with_a_random_password_in_a_0600_file(fresh_config):
    app = create_app(fresh_config)
    try:
        path = Path(fresh_config["DATA_DIR"]) / "initial_admin_password"
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        password = path.read_text().strip()
        assert len(password) >= 16
        assert users_in(app) == [ADMIN]
        assert user_row(app, ADMIN).role == "admin"
        assert login(app.test_client(), ADMIN, password).status_code == 303
        assert password not in every_stored_value(app)

        content, mtime = path.read_bytes(), path.stat().st_mtime_ns
        second = create_app(fresh_config)
        try:
            assert users_in(second) == [ADMIN]
            assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
            assert login(second.test_client(), ADMIN, password).status_code == 303
        finally:
            second.extensions["db"].kw["bind"].dispose()
    finally:
        app.extensions["db"].kw["bind"].dispose()


def test_with_admin_password_set_no_file_is_written(config, tmp_path):
    data = tmp_path / "with-password"
    app = create_app({**config, "DATA_DIR": str(data), "ADMIN_PASSWORD": "chosen-pass-99"})
    try:
        assert not (data / "initial_admin_password").exists()
        assert login(app.test_client(), ADMIN, "chosen-pass-99").status_code == 303
    finally:
        app.extensions["db"].kw["bind"].dispose()


def test_the_first_admin_may_have_another_name(config, tmp_path):
    app = create_app({**config, "DATA_DIR": str(tmp_path / "named"), "ADMIN_USERNAME": "Root",
                      "ADMIN_PASSWORD": "chosen-pass-99"})
    try:
        assert users_in(app) == ["root"]
        assert login(app.test_client(), "root", "chosen-pass-99").status_code == 303
    finally:
        app.extensions["db"].kw["bind"].dispose()


# --- the users CLI ----------------------------------------------------------------------------------------------

def cli(app, *args, input=None):
    result = app.test_cli_runner().invoke(args=list(args), input=input)
    return result


def test_the_users_cli(app, client):
    created = cli(app, "users", "create", "bob", "--role", "operator", "--password-stdin", input="pw-12345678\n")
    assert created.exit_code == 0, created.output
    assert "bob" in created.output and "operator" in created.output
    assert login(app.test_client(), "bob", "pw-12345678").status_code == 303

    listed = cli(app, "users", "list")
    assert listed.exit_code == 0
    lines = dict(line.split("\t", 1) for line in listed.output.strip().splitlines())
    assert lines["bob"].startswith("operator\tactive") and lines[ADMIN].startswith("admin\tactive")

    token = cli(app, "users", "token", "bob", "--name", "ci")
    assert token.exit_code == 0, token.output
    clear = token.output.strip().splitlines()[-1]
    assert clear.startswith("cut_")
    me = client.get("/api/v1/me", headers=bearer(clear))
    assert me.status_code == 200 and me.json["username"] == "bob" and me.json["acting_role"] == "operator"
    assert client.post("/api/v1/workloads", json=WORKLOAD, headers=bearer(clear)).status_code == 201

    assert cli(app, "users", "set-role", "bob", "viewer").exit_code == 0
    assert client.get("/api/v1/users/bob").json["role"] == "viewer"
    error_of(client.post("/api/v1/workloads", json={**WORKLOAD, "ip": "10.0.0.3"}, headers=bearer(clear)), 403,
             "forbidden")

    disabled = cli(app, "users", "disable", "bob")
    assert disabled.exit_code == 0 and "disabled" in disabled.output
    assert client.get("/api/v1/users/bob").json["disabled"] is True
    error_of(client.get("/api/v1/me", headers=bearer(clear)), 401, "unauthorized")
    assert "disabled" in cli(app, "users", "list").output


def test_the_users_cli_refuses_bad_input_clearly(app):
    short = cli(app, "users", "create", "zed", "--password-stdin", input="short\n")
    assert short.exit_code != 0 and "password" in short.output.lower()
    duplicate = cli(app, "users", "create", ADMIN, "--password-stdin", input="pw-12345678\n")
    assert duplicate.exit_code != 0 and "taken" in duplicate.output
    bad_role = cli(app, "users", "set-role", ADMIN, "root")
    assert bad_role.exit_code != 0
    unknown = cli(app, "users", "set-role", "nobody", "viewer")
    assert unknown.exit_code != 0 and "No such user" in unknown.output
    assert "Traceback" not in short.output + duplicate.output + unknown.output


def test_the_users_cli_sets_a_password_and_enables_again(app):
    assert cli(app, "users", "create", "cy", "--password-stdin", input="pw-12345678\n").exit_code == 0
    assert cli(app, "users", "set-password", "cy", "--password-stdin", input="pw-87654321\n").exit_code == 0
    assert login(app.test_client(), "cy", "pw-87654321").status_code == 303
    assert cli(app, "users", "disable", "cy").exit_code == 0
    assert login(app.test_client(), "cy", "pw-87654321").status_code == 401
    assert cli(app, "users", "disable", "cy", "--enable").exit_code == 0
    assert login(app.test_client(), "cy", "pw-87654321").status_code == 303


# --- the account page --------------------------------------------------------------------------------------------

def token_form(name="laptop", role="", expires="", **changes) -> dict:
    return {"tok-name": name, "tok-role": role, "tok-expires_in_days": expires, "tok-save": "Create token", **changes}


def test_create_a_token_on_the_account_page_shows_it_once(app, as_role):
    user = as_role("operator", "sam")
    response = user.post("/account", data=token_form(role="viewer", expires="30"))
    assert response.status_code == 201
    page = text(response)
    token = re.search(r'<code class="secret" id="new-token">(cut_[^<]+)</code>', page).group(1)
    me = user.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json["acting_role"] == "viewer"
    again = text(user.get("/account"))
    assert token not in again and "laptop" in again and token[:8] in again  # listed by its prefix only
    [row] = [t for t in user.get("/api/v1/tokens").json["items"] if t["name"] == "laptop"]
    assert row["role"] == "viewer" and row["expires_at"] is not None


def test_a_bad_token_form_shows_the_errors_beside_the_fields(app, as_role):
    user = as_role("viewer", "tia")
    response = user.post("/account", data=token_form(name="", role="admin", expires="0"))
    assert response.status_code == 422
    page = text(response)
    assert "Name is required" in field_errors(page, "tok-name")
    assert "cannot be higher than your own" in field_errors(page, "tok-role")
    assert "whole number of days" in field_errors(page, "tok-expires_in_days")
    assert 'id="new-token"' not in page
    assert len(user.get("/api/v1/tokens").json["items"]) == 1


def test_the_token_form_offers_only_roles_up_to_ones_own(as_role):
    page = text(as_role("operator", "uma").get("/account"))
    select_html = re.search(r'<select[^>]*name="tok-role".*?</select>', page, re.S).group(0)
    assert 'value="viewer"' in select_html and 'value="operator"' in select_html and 'value="admin"' not in select_html


def test_revoke_a_token_on_the_account_page(app, as_role):
    user = as_role("viewer", "vic")
    created = user.post("/api/v1/tokens", json={"name": "old"}).json
    response = user.post(f"/account/tokens/{created['id']}/revoke")
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert "Token revoked" in text(user.get("/account"))
    error_of(user.get("/api/v1/me", headers=bearer(created["token"])), 401, "unauthorized")


def test_change_the_password_on_the_account_page(app):
    make_user(app, "wes", "viewer")
    browser = app.test_client()
    login(browser, "wes", PASSWORD)
    response = browser.post("/account", data={"pw-current_password": PASSWORD, "pw-new_password": "wes-new-pass-1",
                                              "pw-save": "Change password"})
    assert response.status_code == 303
    assert "Password changed" in text(browser.get("/account"))
    assert login(app.test_client(), "wes", "wes-new-pass-1").status_code == 303
    assert login(app.test_client(), "wes", PASSWORD).status_code == 401


@pytest.mark.parametrize("current, new, field, message", [
    ("wrong-current-1", "wes-new-pass-1", "pw-current_password", "This is not your current password."),
    (PASSWORD, "short", "pw-new_password", "at least 8 characters"),
    ("", "", "pw-current_password", "This is not your current password."),
])
def test_a_refused_password_change_shows_the_error_beside_the_field(app, current, new, field, message):
    make_user(app, "xan", "viewer")
    browser = app.test_client()
    login(browser, "xan", PASSWORD)
    response = browser.post("/account", data={"pw-current_password": current, "pw-new_password": new,
                                              "pw-save": "Change password"})
    assert response.status_code == 422
    assert message in field_errors(text(response), field)
    assert browser.get("/").status_code == 200  # still signed in
    assert login(app.test_client(), "xan", PASSWORD).status_code == 303  # the password is unchanged


def test_the_two_account_forms_do_not_disturb_each_other(app, as_role):
    user = as_role("viewer", "yul")
    response = user.post("/account", data={**token_form(), "pw-current_password": "", "pw-new_password": ""})
    assert response.status_code == 201  # only the pressed button's form is saved: no password error
    assert "This is not your current password." not in text(response)


# --- the admin's accounts pages ---------------------------------------------------------------------------------

def new_user_form(**changes) -> dict:
    return {"username": "zoe", "display_name": "Zoe Z.", "role": "operator", "password": PASSWORD,
            "save": "Create account", **changes}


def test_create_an_account_on_the_admin_page(app, client):
    assert client.get("/admin/users").status_code == 200
    response = client.post("/admin/users", data=new_user_form())
    assert response.status_code == 303 and response.headers["Location"] == "/admin/users"
    page = text(client.get("/admin/users"))
    assert "Account zoe created (operator)." in page and "Zoe Z." in page
    body = client.get("/api/v1/users/zoe").json
    assert body["role"] == "operator" and body["display_name"] == "Zoe Z."
    assert login(app.test_client(), "zoe", PASSWORD).status_code == 303
    assert PASSWORD not in page


@pytest.mark.parametrize("changes, field, message", [
    ({"username": "Bad Name!"}, "username", "1 to 64 characters"),
    ({"username": ""}, "username", "Username is required."),
    ({"username": ADMIN.upper()}, "username", "This username is taken."),
    ({"password": "short"}, "password", "at least 8 characters"),
    ({"role": "root"}, "role", "Role must be one of"),
])
def test_a_bad_account_form_shows_the_error_beside_the_field(client, changes, field, message):
    response = client.post("/admin/users", data=new_user_form(**changes))
    assert response.status_code == 422
    page = text(response)
    assert message in field_errors(page, field), page
    assert PASSWORD not in page  # the password is not echoed back
    assert [u["username"] for u in client.get("/api/v1/users").json["items"]] == [ADMIN]


def test_edit_an_accounts_role_on_the_admin_page(app, client):
    make_user(app, "amy", "viewer")
    page = client.get("/admin/users/amy")
    assert page.status_code == 200 and "Account amy" in text(page)
    response = client.post("/admin/users/amy", data={"display_name": "Amy", "role": "operator", "save": "Save"})
    assert response.status_code == 303
    body = client.get("/api/v1/users/amy").json
    assert body["role"] == "operator" and body["display_name"] == "Amy" and body["disabled"] is False


def test_an_admin_cannot_demote_itself_on_the_admin_page(client):
    response = client.post(f"/admin/users/{ADMIN}", data={"display_name": "", "role": "viewer", "save": "Save"})
    assert response.status_code == 422
    assert "You cannot lower or disable your own account" in field_errors(text(response), "role")
    assert client.get("/api/v1/me").json["role"] == "admin"


def test_disable_an_account_on_the_admin_page_and_revoke_its_token(app, client):
    user = client_as(app, "ben", "operator")
    page = text(client.get("/admin/users/ben"))
    token_id = user.get("/api/v1/tokens").json["items"][0]["id"]
    assert f"/account/tokens/{token_id}/revoke" in page
    response = client.post(f"/account/tokens/{token_id}/revoke")
    assert response.status_code == 303 and response.headers["Location"] == "/admin/users/ben"  # back to ben
    error_of(user.get("/api/v1/me"), 401, "unauthorized")
    assert client.post("/admin/users/ben", data={"display_name": "", "role": "operator", "disabled": "y",
                                                 "save": "Save"}).status_code == 303
    assert user.get("/").status_code == 302
    assert client.get("/api/v1/users/ben").json["disabled"] is True


def test_an_unknown_account_page_is_404(client):
    assert client.get("/admin/users/nobody").status_code == 404


@pytest.mark.parametrize("name", ["ad\x00min", "x" * 300, "\u00e9l\u00e8ve", " "])
def test_a_name_that_cannot_be_a_username_finds_no_account_and_is_no_error(client, anon_client, name):
    from urllib.parse import quote

    assert client.get(f"/api/v1/users/{quote(name)}").status_code == 404
    assert client.get(f"/api/v1/tokens?user={quote(name)}").status_code == 404
    basic = base64.b64encode(f"{name}:whatever-pass".encode()).decode()
    response = anon_client.post("/api/v1/tokens", json={"name": "x"}, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 401  # a failed sign-in like any other, audited without the NUL
    login_page = anon_client.post("/login", data={"username": name, "password": "whatever-pass", "save": "Sign in"})
    assert login_page.status_code == 401
