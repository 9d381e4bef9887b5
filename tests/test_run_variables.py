"""An environment's variables and secrets reach a run's test code (issue 14), and a secret is masked in every
place the run's output is kept: the log (its API, its download, the page), the failure message and traceback,
the JUnit XML, the run's error and events, and never stored in clear in any table of the database."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import select

from conftest import ADMIN

SECRET = "s3cr3t/Tok+en&42"  # URL-encodes and XML-escapes differently from itself
ENCODINGS = {SECRET, base64.b64encode(SECRET.encode()).decode(), urllib.parse.quote(SECRET, safe=""),
             urllib.parse.quote_plus(SECRET), SECRET.replace("&", "&amp;")}
ENVIRONMENT = 3

LEAKY = f'''
import base64, hashlib, os, sys, time

def test_sees_the_variables():
    print("given", os.environ["BASE_URL"], "run", os.environ["CUTOVER_RUN_ID"], "env",
          os.environ["CUTOVER_ENVIRONMENT_ID"], os.environ["CUTOVER_ENVIRONMENT_NAME"])
    assert os.environ["BASE_URL"] == "http://stub.invalid:8080"
    # the secret in clear (its hash here: the uploaded file itself is kept in the database)
    assert hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest() == {hashlib.sha256(SECRET.encode()).hexdigest()!r}
    assert "SECRET_KEY" not in os.environ and "CREDENTIALS_KEY" not in os.environ

def test_prints_the_secret():
    secret = os.environ["API_TOKEN"]
    print("plain:", secret)
    print("base64:", base64.b64encode(secret.encode()).decode())
    sys.stderr.write("stderr: " + secret + "\\n")
    sys.stdout.write("split:" + secret[:5])
    sys.stdout.flush()
    time.sleep(0.2)
    sys.stdout.write(secret[5:] + " end\\n")
    sys.stdout.flush()

def test_fails_with_the_secret():
    secret = os.environ["API_TOKEN"]
    assert secret == "something else", "the token was " + secret
'''.encode()


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "16")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


def upload(client, body: bytes, name: str, directory: str = "vars") -> str:
    response = client.post("/api/v1/test-files", data={"directory": directory, "file": (io.BytesIO(body), name),
                                                       "overwrite": "true"}, content_type="multipart/form-data")
    assert response.status_code == 201, response.json
    return response.json["path"]


def configure(app, environment_id: int = ENVIRONMENT, variables=None, secrets=None, setup=None, teardown=None):
    """Set an environment's variables, secrets and stages as the admin's PATCH will (its API is built apart)."""
    from webapp.environments.variables import store_secrets
    from webapp.extensions import db
    from webapp.models import EnvironmentRow

    with app.app_context():
        row = db.session.get(EnvironmentRow, environment_id)
        row.variables = variables or {}
        store_secrets(row, secrets or {})
        row.setup, row.teardown = setup, teardown
        db.session.commit()


def run_to_end(client, work, files: list[str], environment_id: int = ENVIRONMENT) -> dict:
    created = client.post("/api/v1/runs", json={"environment_id": environment_id, "test_files": files})
    assert created.status_code == 201, created.json
    work()
    body = client.get(f"/api/v1/runs/{created.json['id']}").json
    assert body["state"] not in ("queued", "running"), body
    return body


def leaks(found: str) -> list[str]:
    return [value for value in ENCODINGS if value in found]


def database_leaks(app) -> list[str]:
    """Every text column of every table, and the database file itself (SQLite), searched for the secret."""
    from webapp.db import Base
    from webapp.extensions import db

    found = []
    with app.app_context():
        for table in Base.metadata.sorted_tables:
            for row in db.session.execute(select(table)).mappings():
                for name, value in row.items():
                    if value is not None and leaks(value if isinstance(value, str) else repr(value)):
                        found.append(f"{table.name}.{name}")
        db.session.rollback()
        url = app.config["DATABASE_URL"]
        if url.startswith("sqlite:///"):
            path = Path(url[len("sqlite:///"):])
            for part in (path, path.with_name(path.name + "-wal")):
                if part.exists() and any(v.encode() in part.read_bytes() for v in ENCODINGS):
                    found.append(str(part))
    return found


def test_variables_and_secrets_reach_the_test_and_the_secret_is_masked_everywhere(app, client, work):
    configure(app, variables={"BASE_URL": "http://stub.invalid:8080"}, secrets={"API_TOKEN": SECRET})
    body = run_to_end(client, work, [upload(client, LEAKY, "test_leaky.py")])
    run_id = body["id"]
    assert body["state"] == "failed", body
    assert body["variables"] == ["BASE_URL"] and body["secrets"] == ["API_TOKEN"]
    outcomes = {t["nodeid"].rsplit("::", 1)[1]: t for t in body["tests"]}
    assert outcomes["test_sees_the_variables"]["outcome"] == "passed"  # the secret reached the test in clear
    assert outcomes["test_prints_the_secret"]["outcome"] == "passed"
    failed = outcomes["test_fails_with_the_secret"]
    assert failed["outcome"] == "failed" and "the token was [masked]" in failed["message"], failed
    assert "[masked]" in failed["details"] and not leaks(failed["details"])

    log = client.get(f"/api/v1/runs/{run_id}/log.txt").get_data(as_text=True)
    assert f"run {run_id} env {ENVIRONMENT}" in log and "http://stub.invalid:8080" in log  # variables: shown
    for line in ("plain: [masked]", "base64: [masked]", "stderr: [masked]", "split:[masked] end"):
        assert line in log, line
    junit = client.get(f"/api/v1/runs/{run_id}/junit.xml").get_data(as_text=True)
    assert "[masked]" in junit

    answers = {
        "run JSON": json.dumps(body), "runs list": client.get("/api/v1/runs").get_data(as_text=True),
        "log API": client.get(f"/api/v1/runs/{run_id}/log").get_data(as_text=True), "log download": log,
        "page log download": client.get(f"/runs/{run_id}/log.txt").get_data(as_text=True),
        "JUnit download": junit, "page JUnit": client.get(f"/runs/{run_id}/junit.xml").get_data(as_text=True),
        "run page": client.get(f"/runs/{run_id}").get_data(as_text=True),
        "tests API": client.get("/api/v1/tests").get_data(as_text=True),
        "test history": client.get(f"/api/v1/tests/{failed['nodeid']}/history").get_data(as_text=True),
        "events": client.get("/api/v1/events").get_data(as_text=True),
        "environment": client.get(f"/api/v1/environments/{ENVIRONMENT}").get_data(as_text=True),
        "environment page": client.get(f"/environments/{ENVIRONMENT}").get_data(as_text=True),
    }
    assert {name: leaks(answer) for name, answer in answers.items() if leaks(answer)} == {}
    assert database_leaks(app) == []


def test_a_run_without_variables_gets_only_its_own_and_lists_none(app, client, work):
    probe = b"import os\n\ndef test_env():\n    print('names', sorted(k for k in os.environ if k.startswith('CUTOVER_')))\n"
    body = run_to_end(client, work, [upload(client, probe, "test_probe.py")])
    assert body["state"] == "success" and body["variables"] == [] and body["secrets"] == [] and body["stages"] == {}
    log = client.get(f"/api/v1/runs/{body['id']}/log.txt").get_data(as_text=True)
    assert "names ['CUTOVER_ENVIRONMENT_ID', 'CUTOVER_ENVIRONMENT_NAME', 'CUTOVER_RUN_ID']" in log
    queued = client.post("/api/v1/runs", json={"environment_id": 5, "test_files": ["sample_tests/test_passing.py"]})
    assert queued.json["variables"] == [] and queued.json["secrets"] == []


def test_the_sample_uses_base_url_or_its_own_stub(app, client, work):
    plain = run_to_end(client, work, ["sample_tests/test_base_url.py"])
    assert plain["state"] == "success" and plain["summary"]["passed"] == 2, plain
    # an environment that names a BASE_URL: the sample goes there (here a stub of this test's own)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        configure(app, variables={"BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/"})
        given = run_to_end(client, work, ["sample_tests/test_base_url.py"])
    finally:
        server.shutdown()
        server.server_close()
    assert given["state"] == "success" and given["variables"] == ["BASE_URL"], given


def test_a_secret_in_the_run_error_and_its_event_is_masked(app, client, work, monkeypatch):
    from webapp.runs import pipeline

    configure(app, secrets={"API_TOKEN": SECRET})

    def broken(*args, **kwargs):
        raise RuntimeError(f"could not reach https://api.invalid/?token={SECRET}")

    monkeypatch.setattr(pipeline, "run_pytest", broken)
    body = run_to_end(client, work, ["sample_tests/test_passing.py"])
    assert body["state"] == "error" and body["error"] == "the worker failed: could not reach " \
                                                         "https://api.invalid/?token=[masked]", body
    events = client.get("/api/v1/events").get_data(as_text=True)
    assert "[masked]" in events and not leaks(events)
    assert database_leaks(app) == []
    assert body["username"] == ADMIN


def test_the_environment_variables_reach_pytest_but_the_process_settings_win(app):
    from webapp.runs.executor import scrubbed_environment

    env = scrubbed_environment(Path("/tmp/run"), {"CUTOVER_TARGET_IP": "10.0.0.1"},
                               {"PATH": "/evil", "BASE_URL": "http://x", "API_TOKEN": SECRET})
    assert env["PATH"] != "/evil" and env["BASE_URL"] == "http://x" and env["API_TOKEN"] == SECRET
    assert env["CUTOVER_TARGET_IP"] == "10.0.0.1"


def test_a_secret_with_quotes_is_masked_as_junit_writes_it_in_an_attribute():
    from xml.etree.ElementTree import Element, tostring

    from webapp.domain.masking import MASK, Masker

    value = "pa\"ss'word<1>&"
    written = tostring(Element("failure", message=f"got {value}"), encoding="unicode")
    assert Masker([value]).mask(written) == f'<failure message="got {MASK}" />'
