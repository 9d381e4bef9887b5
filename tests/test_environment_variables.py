"""An environment's variables, write-only secrets and setup/teardown files, as admins edit them (issue 14):
merged by name, null deletes, reserved names refused, secrets never sent back nor stored in clear, the audit
log naming names only, and nobody but an admin changing any of it."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from conftest import ADMIN, client_as
from webapp import create_app
from webapp.extensions import db
from webapp.models import AuditRow, EnvironmentRow

ENV = 7
SECRET = "hunter2-very-secret"
PASSING = "sample_tests/test_passing.py"


def patch(client, body, environment_id=ENV):
    return client.patch(f"/api/v1/environments/{environment_id}", json=body)


def audits(app):
    with app.app_context():
        return [a.details for a in db.session.scalars(select(AuditRow).where(
            AuditRow.action == "environment.update").order_by(AuditRow.id))]


def stored(app, environment_id=ENV) -> EnvironmentRow:
    with app.app_context():
        return db.session.get(EnvironmentRow, environment_id)


def test_variables_merge_by_name_and_null_deletes(client):
    first = patch(client, {"variables": {"BASE_URL": "http://env7.lab:8080", "DB_HOST": "db7"}})
    assert first.status_code == 200, first.json
    assert first.json["variables"] == {"BASE_URL": "http://env7.lab:8080", "DB_HOST": "db7"}
    second = patch(client, {"variables": {"DB_HOST": None, "REGION": "eu-west-1"}})
    assert second.json["variables"] == {"BASE_URL": "http://env7.lab:8080", "REGION": "eu-west-1"}
    assert patch(client, {"name": "lab-seven"}).json["variables"] == second.json["variables"]  # not sent: kept
    assert client.get(f"/api/v1/environments/{ENV}").json["variables"] == second.json["variables"]


def test_secrets_are_write_only_encrypted_listed_by_name_and_audited_by_name(app, client, as_role, config):
    response = patch(client, {"secrets": {"API_TOKEN": SECRET, "DB_PASSWORD": "pa55-word-db"}})
    assert response.status_code == 200, response.json
    assert response.json["secrets"] == ["API_TOKEN", "DB_PASSWORD"]
    assert SECRET not in response.get_data(as_text=True)
    row = stored(app)
    assert row.secret_names == ["API_TOKEN", "DB_PASSWORD"] and SECRET not in (row.secrets_enc or "")
    for reader in (client, as_role("viewer")):
        for url in (f"/api/v1/environments/{ENV}", "/api/v1/environments", f"/environments/{ENV}", "/environments/",
                    "/api/v1/audit"):
            answer = reader.get(url)
            assert answer.status_code in (200, 403) and SECRET not in answer.get_data(as_text=True), url
    assert patch(client, {"secrets": {"DB_PASSWORD": None}}).json["secrets"] == ["API_TOKEN"]
    assert audits(app) == [{"secret_names": {"set": ["API_TOKEN", "DB_PASSWORD"], "removed": []}},
                           {"secret_names": {"set": [], "removed": ["DB_PASSWORD"]}}]
    database = open(config["DATABASE_URL"].removeprefix("sqlite:///"), "rb").read() \
        if config["DATABASE_URL"].startswith("sqlite") else b""
    assert SECRET.encode() not in database


def test_changing_a_secret_to_the_same_value_is_not_a_change_but_a_new_value_is(app, client):
    patch(client, {"secrets": {"API_TOKEN": SECRET}})
    patch(client, {"secrets": {"API_TOKEN": SECRET}})
    patch(client, {"secrets": {"API_TOKEN": SECRET + "-2"}})
    assert [d["secret_names"]["set"] for d in audits(app)] == [["API_TOKEN"], [], ["API_TOKEN"]]


@pytest.mark.parametrize("body, field", [
    ({"variables": {"PATH": "/tmp"}}, "variables.PATH"),
    ({"variables": {"PYTHONPATH": "/x"}}, "variables.PYTHONPATH"),
    ({"secrets": {"CUTOVER_RUN_ID": "x"}}, "secrets.CUTOVER_RUN_ID"),
    ({"variables": {"LD_PRELOAD": "evil.so"}}, "variables.LD_PRELOAD"),
    ({"variables": {"lower": "x"}}, "variables.lower"),
    ({"variables": {"BIG": "x" * 4097}}, "variables.BIG"),
    ({"variables": {"N": 5}}, "variables.N"),
    ({"variables": ["A=1"]}, "variables"),
    ({"secrets": "A=1"}, "secrets"),
    ({"variables": {f"V{i}": "x" for i in range(51)}}, "variables"),
    ({"setup": "sample_tests/no_such_file.py"}, "setup"),
    ({"teardown": 5}, "teardown"),
])
def test_bad_input_is_refused_with_422_beside_the_field_and_changes_nothing(app, client, body, field):
    before = client.get(f"/api/v1/environments/{ENV}").json
    response = patch(client, {**body, "name": "renamed"})
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"], response.json
    assert client.get(f"/api/v1/environments/{ENV}").json == before
    assert audits(app) == []


def test_setup_and_teardown_name_available_test_files_and_null_clears_them(app, client):
    response = patch(client, {"setup": PASSING, "teardown": PASSING})
    assert response.status_code == 200, response.json
    assert (response.json["setup"], response.json["teardown"]) == (PASSING, PASSING)
    assert patch(client, {"setup": None}).json["setup"] is None
    assert audits(app)[-1] == {"setup": None}


def test_only_an_admin_changes_variables_secrets_or_stages(app, client, as_role):
    patch(client, {"variables": {"A": "1"}})
    for role in ("viewer", "operator"):
        other = as_role(role)
        for body in ({"variables": {"A": "2"}}, {"secrets": {"TOKEN": SECRET}}, {"setup": PASSING}):
            assert patch(other, body).status_code == 403
    row = stored(app)
    assert row.variables == {"A": "1"} and row.secrets_enc is None and row.setup is None


def test_rotating_the_credentials_key_re_encrypts_the_secrets(config, tmp_path):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = create_app({**config, "CREDENTIALS_KEY": key_a})
    assert patch(client_as(first, ADMIN), {"secrets": {"API_TOKEN": SECRET}}).status_code == 200
    before = stored(first).secrets_enc
    first.extensions["db"].kw["bind"].dispose()
    both = create_app({**config, "CREDENTIALS_KEY": f"{key_b},{key_a}"})
    result = both.test_cli_runner().invoke(args=["rotate-credentials"])
    assert result.exit_code == 0 and "Re-encrypted 1 stored secret" in result.output, result.output
    after = stored(both).secrets_enc
    both.extensions["db"].kw["bind"].dispose()
    assert after != before
    only_b = create_app({**config, "CREDENTIALS_KEY": key_b})
    with only_b.app_context():
        from webapp.environments import variables

        assert variables.secrets_of(db.session.get(EnvironmentRow, ENV)) == {"API_TOKEN": SECRET}
    only_b.extensions["db"].kw["bind"].dispose()


def test_the_page_edits_variables_and_stages_and_sets_and_deletes_secrets_without_showing_values(app, client,
                                                                                                 as_role):
    page = client.get(f"/environments/{ENV}")
    assert page.status_code == 200 and "Secrets" in page.get_data(as_text=True)
    saved = client.post(f"/environments/{ENV}", data={"name": "env-7", "description": "", "enabled": "y",
                                                      "variables_text": "BASE_URL=http://lab7:8080\nEMPTY\n",
                                                      "setup": PASSING, "teardown": ""})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    row = stored(app)
    assert row.variables == {"BASE_URL": "http://lab7:8080", "EMPTY": ""} and row.setup == PASSING
    assert client.post(f"/environments/{ENV}", data={"name": "env-7", "enabled": "y",
                                                     "variables_text": "EMPTY=now set", "setup": PASSING}
                       ).status_code == 303
    assert stored(app).variables == {"EMPTY": "now set"}  # a line removed: the variable is deleted
    set_secret = client.post(f"/environments/{ENV}/secrets", data={"name": "API_TOKEN", "value": SECRET})
    assert set_secret.status_code == 303
    page = client.get(f"/environments/{ENV}").get_data(as_text=True)
    assert "API_TOKEN" in page and SECRET not in page and "now set" in page
    viewer_page = as_role("viewer").get(f"/environments/{ENV}").get_data(as_text=True)
    assert "API_TOKEN" in viewer_page and "now set" in viewer_page and "Save secret" not in viewer_page
    assert client.post(f"/environments/{ENV}/secrets/delete", data={"name": "API_TOKEN"}).status_code == 303
    assert stored(app).secret_names == [] and stored(app).secrets_enc is None


@pytest.mark.parametrize("data, beside, message", [
    ({"name": "PATH", "value": "x"}, "name", "reserved"),
    ({"name": "lower", "value": "x"}, "name", "upper-case"),
    ({"name": "OK_NAME", "value": "v" * 5000}, "value", "at most 4096 bytes"),
])
def test_a_bad_secret_on_the_page_is_refused_beside_its_field(app, client, data, beside, message):
    response = client.post(f"/environments/{ENV}/secrets", data=data)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f'id="{beside}-error"' in html and message in html
    assert "v" * 5000 not in html  # a refused value is not echoed back either
    assert stored(app).secrets_enc is None


def test_a_reserved_variable_on_the_page_is_refused_beside_the_field(app, client):
    response = client.post(f"/environments/{ENV}", data={"name": "env-7", "enabled": "y",
                                                          "variables_text": "LD_PRELOAD=/tmp/evil.so"})
    assert response.status_code == 422
    assert 'id="variables_text-error"' in response.get_data(as_text=True)
    assert stored(app).variables == {}


def test_operators_and_viewers_cannot_post_secrets(app, as_role):
    for role in ("viewer", "operator"):
        other = as_role(role)
        assert other.post(f"/environments/{ENV}/secrets", data={"name": "API_TOKEN", "value": SECRET}).status_code == 403
        assert other.post(f"/environments/{ENV}/secrets/delete", data={"name": "API_TOKEN"}).status_code == 403
    assert stored(app).secrets_enc is None
