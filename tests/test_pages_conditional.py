"""Polled fragments that saw no change answer ``304 Not Modified``: the browser's cache sends back the ETag it
was given (If-None-Match) and hands htmx the body it kept. The same state gives the same ETag, a change a new body;
the access check comes first, so a caller who may not see the page never gets a 304."""
from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import contextmanager

from sqlalchemy import update

from conftest import client_as, make_migration, make_workload

HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


def poll(client, url: str, etag: str | None = None):
    return client.get(url, headers={**HX, **({"If-None-Match": etag} if etag else {})})


def without_csrf(body: str) -> str:
    """The markup with its CSRF tokens left out (each render signs its token anew)."""
    return re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', body)


def change(app, table, row_id: int, **values) -> None:
    """What a worker would write (its own transaction, outside any request)."""
    from webapp.extensions import db

    with app.app_context():
        db.session.execute(update(table).where(table.id == row_id).values(**values))
        db.session.commit()


def a_migration(client) -> str:
    source = make_workload(client, ip="10.9.8.7")
    return f"/migrations/{make_migration(client, source['id'])['id']}"


@contextmanager
def sqlite_write_lock_held(database_url: str):
    """Another connection holds SQLite's write lock (a migration job's progress write, say) until the block ends."""
    writer = sqlite3.connect(database_url[len("sqlite:///"):], isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def in_thread(work, wait: float) -> threading.Thread:
    """``work`` started in a thread, waited for up to ``wait`` seconds; the thread (alive if it is still waiting)."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(wait)
    return thread


def test_an_unchanged_migration_status_answers_304_and_a_change_a_new_body(app, client):
    from webapp.models import MigrationRow

    url = a_migration(client)
    first = poll(client, url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"') and 'id="migration-status"' in text(first)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert {"HX-Request", "Cookie"} <= set(first.vary) and "Content-Security-Policy" in first.headers
    again = poll(client, url, etag)
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    assert "Content-Security-Policy" in again.headers and "Cookie" in again.vary
    assert without_csrf(text(poll(client, url))) == without_csrf(text(first))  # the same state, the same markup

    migration_id = int(url.rsplit("/", 1)[1])
    change(app, MigrationRow, migration_id, state="running", progress=[
        {"name": "C:\\", "size": 40, "copied": 10.0}, {"name": "D:\\", "size": 100, "copied": 0.0}])
    changed = poll(client, url, etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "10.0 / 40 GiB" in text(changed) and "Live · refresh" in text(changed)
    assert poll(client, url, changed.headers["ETag"]).status_code == 304
    change(app, MigrationRow, migration_id, progress=[
        {"name": "C:\\", "size": 40, "copied": 20.0}, {"name": "D:\\", "size": 100, "copied": 0.0}])
    assert "20.0 / 40 GiB" in text(poll(client, url, changed.headers["ETag"]))


def test_a_plain_browser_gets_the_whole_page_whatever_it_sends(client):
    url = a_migration(client)
    etag = poll(client, url).headers["ETag"]
    page = client.get(url, headers={"If-None-Match": etag})
    assert page.status_code == 200 and "<html" in text(page) and "ETag" not in page.headers
    assert 'id="migration-status"' in text(page)


def test_the_access_check_comes_before_the_etag(app, client, anon_client):
    url = a_migration(client)
    etag = poll(client, url).headers["ETag"]

    refused = poll(anon_client, url, etag)  # signed out: sent to sign in, never a 304
    assert refused.status_code == 204 and "/login" in refused.headers["HX-Redirect"]

    viewer = client_as(app, "watcher", "viewer")
    seen = poll(viewer, url, etag)  # another account (no Run or Edit buttons): its own ETag, not the admin's 304
    assert seen.status_code == 200 and seen.headers["ETag"] != etag and "Run migration" not in text(seen)
    viewer_etag = seen.headers["ETag"]
    assert poll(viewer, url, viewer_etag).status_code == 304

    from webapp.models import UserRow

    with app.app_context():
        from webapp.accounts import services as accounts

        user_id = accounts.get("watcher").id
    change(app, UserRow, user_id, disabled=True)
    gone = poll(viewer, url, viewer_etag)  # disabled since: refused, not 304
    assert gone.status_code == 204 and "/login" in gone.headers["HX-Redirect"]


def test_a_signed_out_session_is_refused_though_it_kept_its_cookie(app, client):
    url = a_migration(client)
    etag = poll(client, url).headers["ETag"]
    cookie = client.get_cookie("session").value
    copy = app.test_client()
    copy.set_cookie("session", cookie)
    assert poll(copy, url, etag).status_code == 304
    client.post("/logout")
    assert poll(copy, url, etag).status_code == 204  # signing out ended the copy too: refused, not 304


def test_a_missing_migration_is_not_found_on_the_etag_path_too(client):
    assert poll(client, "/migrations/999999", 'W/"x"').status_code == 404


def test_a_validation_run_the_page_does_not_show_yet_is_always_sent(app, client):
    from webapp.models import MigrationRow

    url = a_migration(client)
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}).json
    change(app, MigrationRow, int(url.rsplit("/", 1)[1]), state="running", phase="validating",
           validation_run_id=run["id"])
    unshown = poll(client, url)
    assert unshown.status_code == 200 and "ETag" not in unshown.headers and 'hx-swap-oob' in text(unshown)
    shown = poll(client, f"{url}?run={run['id']}")
    assert "ETag" in shown.headers and poll(client, f"{url}?run={run['id']}", shown.headers["ETag"]).status_code == 304


def test_the_log_tail_answers_304_until_the_log_grows_or_the_run_ends(app, client):
    from webapp.extensions import db
    from webapp.models import RunLogChunk, RunRow

    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}).json
    with app.app_context():
        db.session.add(RunLogChunk(run_id=run["id"], start=0, end=6, text="hello\n"))
        db.session.commit()
    url = f"/runs/{run['id']}/log?offset=6"
    first = poll(client, url)
    assert first.status_code == 200 and "End of log" not in text(first) and "hx-swap-oob" not in text(first)
    etag = first.headers["ETag"]
    assert poll(client, url, etag).status_code == 304
    with app.app_context():
        db.session.add(RunLogChunk(run_id=run["id"], start=6, end=12, text="world\n"))
        db.session.commit()
    grown = poll(client, url, etag)
    assert grown.status_code == 200 and "world" in text(grown) and grown.headers["ETag"] != etag
    caught_up = f"/runs/{run['id']}/log?offset=12"
    etag = poll(client, caught_up).headers["ETag"]
    assert poll(client, caught_up, etag).status_code == 304
    change(app, RunRow, run["id"], state="success")
    ended = poll(client, caught_up, etag)
    assert ended.status_code == 200 and "End of log" in text(ended) and "hx-trigger" not in text(ended)


def test_polls_read_beside_a_writer_holding_the_sqlite_lock_but_the_page_itself_does_not_change(app, client,
                                                                                                 database_url):
    """A live fragment's transaction is a deferred BEGIN: on SQLite (WAL) it waits for no writer. Every other
    request keeps BEGIN IMMEDIATE (checked on the engine: the same connection pool, the option unset)."""
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL has no database-wide write lock
    url = a_migration(client)
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}).json
    answers = {}

    def polls():
        for path in (url, f"/runs/{run['id']}", f"/runs/{run['id']}/log?offset=0"):
            answers[path] = poll(client, path).status_code

    with sqlite_write_lock_held(database_url):
        assert not in_thread(polls, 10).is_alive(), "a poll waited for the write lock"
        assert set(answers.values()) == {200}, answers
    engine = app.extensions["db"].kw["bind"]
    assert not engine.get_execution_options().get("reads_only")
    assert app.extensions["db_reader"].get_execution_options()["reads_only"] is True


def test_end_read_ends_a_read_transaction_and_leaves_a_pending_write_alone(app):
    from webapp.extensions import db
    from webapp.models import WorkloadRow

    with app.app_context():
        db.session.get(WorkloadRow, 1)  # a read: a transaction (on SQLite, the database's lock)
        assert db.session.in_transaction()
        db.end_read()
        assert not db.session.in_transaction()
        db.session.add(WorkloadRow(ip="10.1.1.1", username="u", password_enc="x", storage=[]))
        db.end_read()  # a pending write: left alone, for its owner to commit or roll back
        assert db.session.in_transaction() and db.session.new
        db.session.rollback()
    with app.app_context():
        assert db.session.query(WorkloadRow).filter_by(ip="10.1.1.1").count() == 0


def test_api_reads_of_a_run_and_a_migration_answer_beside_a_writer_holding_the_sqlite_lock(app, client, database_url):
    """GET of a run, its log and a migration (what scripts poll) read in a deferred transaction, the token check
    included (its occasional last_used_at write is a transaction of its own); a write through the API still
    waits for the lock as it must."""
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL has no database-wide write lock
    url = a_migration(client)
    migration_id = int(url.rstrip("/").rsplit("/", 1)[1])
    run = client.post("/api/v1/runs", json={"environment_id": 1, "test_files": ["sample_tests/test_passing.py"]}).json
    answers = {}

    def reads():
        for path in (f"/api/v1/runs/{run['id']}", f"/api/v1/runs/{run['id']}/log", f"/api/v1/migrations/{migration_id}"):
            answers[path] = client.get(path).status_code

    def write():
        answers["POST"] = client.post("/api/v1/events", json={"user_id": "bob", "description": "x"}).status_code

    with sqlite_write_lock_held(database_url):
        assert not in_thread(reads, 10).is_alive(), "an API read waited for the write lock"
        assert set(answers.values()) == {200}, answers
        posting = in_thread(write, 0.5)
        assert posting.is_alive() and "POST" not in answers, "a write went ahead without the lock"
    posting.join(10)
    assert answers["POST"] == 201
