"""GET /metrics: Prometheus's text format, read at scrape time from the database and Redis. Who may scrape (any
viewer's token or METRICS_TOKEN, never without one) and that the figures are the rows and jobs the test made."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import make_migration, make_workload
from webapp.db import utcnow

METRICS_TOKEN = "scrape-" + "k" * 30


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def scrape(client, token: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape."""
    response = client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/plain" and "version=0.0.4" in response.content_type
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


@pytest.fixture
def world(app, client, registered_worker):
    """Environment 1: a run running, two waiting (90 s and 30 s); environment 2: a run given the environment;
    two runs finished 8 minutes ago (60 s waited, 60 s ran), a cancelled one that never started, one finished
    two hours ago; events: two pending, one processed, one failed after 3 webhook attempts; a migration not
    started; two jobs in the queue; one worker heartbeating."""
    from webapp.extensions import db
    from webapp.models import EventRow, RunRow

    now = utcnow()
    ago = lambda seconds: now - timedelta(seconds=seconds)  # noqa: E731
    runs = [dict(environment_id=1, state="running", created_at=ago(200), started_at=ago(120)),
            dict(environment_id=1, state="queued", created_at=ago(90)),
            dict(environment_id=1, state="queued", created_at=ago(30)),
            dict(environment_id=2, state="queued", created_at=ago(5), lock_token="t", dispatched_at=ago(1)),
            dict(environment_id=3, state="success", created_at=ago(600), started_at=ago(540), finished_at=ago(480)),
            dict(environment_id=3, state="success", created_at=ago(600), started_at=ago(540), finished_at=ago(480)),
            dict(environment_id=4, state="cancelled", created_at=ago(400), finished_at=ago(300)),
            dict(environment_id=4, state="failed", created_at=ago(8000), started_at=ago(7900), finished_at=ago(7200))]
    events = [("pending", 0, None), ("pending", 0, None), ("processed", 1, None),
              ("failed", 3, "webhook failed after 3 attempts: 500")]
    with app.app_context():
        db.session.add_all(RunRow(username="admin", test_files=["sample_tests/test_passing.py"], **r) for r in runs)
        db.session.add_all(EventRow(id=f"00000000-0000-0000-0000-00000000000{i}", user_id="u", description="d",
                                    status=status, attempts=attempts, last_error=error)
                           for i, (status, attempts, error) in enumerate(events))
        db.session.commit()
        for _ in range(2):
            app.extensions["queues"]["default"].enqueue("os.getpid")
    make_migration(client, make_workload(client)["id"])
    registered_worker()


def test_the_figures_are_what_the_database_and_redis_hold(app, as_role, world):
    viewer = as_role("viewer")
    m = scrape(viewer, viewer.token)
    assert m[("cutover_queue_jobs", (("queue", "default"),))] == 2
    assert m[("cutover_workers_alive", ())] == 1 and m[("cutover_workers_registered", ())] == 1
    assert {s: m[("cutover_runs", (("state", s),))] for s in
            ("queued", "running", "success", "failed", "error", "cancelled")} == {
        "queued": 3, "running": 1, "success": 2, "failed": 1, "error": 0, "cancelled": 1}
    assert m[("cutover_environments_busy", ())] == 2
    waiting = {k[1]: v for k, v in m.items() if k[0] == "cutover_environment_waiting_runs"}
    assert waiting == {(("environment", "1"),): 2}  # only environments with runs waiting
    oldest = m[("cutover_environment_oldest_wait_seconds", (("environment", "1"),))]
    assert 90 <= oldest < 120
    assert m[("cutover_migrations", (("state", "not_started"),))] == 1
    assert m[("cutover_migrations", (("state", "running"),))] == 0
    assert {s: m[("cutover_events", (("status", s),))] for s in ("pending", "processed", "failed")} == {
        "pending": 2, "processed": 1, "failed": 1}
    assert m[("cutover_webhook_failed_events", ())] == 1 and m[("cutover_webhook_failed_attempts", ())] == 3
    assert m[("cutover_recent_runs_finished", (("state", "success"),))] == 2  # the run of two hours ago is out
    assert m[("cutover_recent_runs_finished", (("state", "cancelled"),))] == 1
    assert m[("cutover_recent_runs_finished", (("state", "failed"),))] == 0
    assert m[("cutover_recent_run_duration_seconds_count", ())] == 2
    assert m[("cutover_recent_run_duration_seconds_sum", ())] == pytest.approx(120)
    assert m[("cutover_recent_run_duration_seconds", (("quantile", "0.95"),))] == pytest.approx(60)
    assert m[("cutover_recent_run_wait_seconds_sum", ())] == pytest.approx(120)
    assert m[("cutover_recent_run_wait_seconds", (("quantile", "1"),))] == pytest.approx(60)


def test_an_empty_database_gives_zeros_and_no_environment_series(app, client):
    m = scrape(client, client.token)
    assert m[("cutover_runs", (("state", "queued"),))] == 0 and m[("cutover_workers_alive", ())] == 0
    assert m[("cutover_recent_run_duration_seconds_count", ())] == 0
    assert not [k for k in m if k[0].startswith("cutover_environment_")]


def assert_unauthorized(response):
    assert response.status_code == 401, response.status_code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"]["code"] == "unauthorized"


def test_no_token_or_a_wrong_one_is_401(app, anon_client):
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    assert_unauthorized(anon_client.get("/metrics"))
    assert_unauthorized(anon_client.get("/metrics", headers=bearer(METRICS_TOKEN + "x")))
    assert_unauthorized(anon_client.get("/metrics", headers=bearer(METRICS_TOKEN[:-1])))
    assert_unauthorized(anon_client.get("/metrics", headers={"Authorization": "Basic " + METRICS_TOKEN}))


def test_the_metrics_token_is_accepted_and_an_unset_one_matches_nothing(app, anon_client):
    assert_unauthorized(anon_client.get("/metrics", headers=bearer(METRICS_TOKEN)))  # not set yet
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    assert ("cutover_runs", (("state", "queued"),)) in scrape(anon_client, METRICS_TOKEN)
    assert anon_client.get("/api/v1/runs", headers=bearer(METRICS_TOKEN)).status_code == 401  # only /metrics


def test_a_viewer_token_may_scrape(as_role):
    viewer = as_role("viewer")
    assert ("cutover_events", (("status", "pending"),)) in scrape(viewer, viewer.token)


def test_each_app_has_its_own_registry(app, config):
    from prometheus_client import REGISTRY

    from webapp import create_app

    other = create_app(config)
    try:
        assert app.extensions["metrics_registry"] is not other.extensions["metrics_registry"]
        assert not [n for n in REGISTRY._names_to_collectors if n.startswith("cutover_")]
    finally:
        other.extensions["db"].kw["bind"].dispose()
