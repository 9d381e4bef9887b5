"""What survives: unique IPs under a race, data across restarts, secrets generated once."""
from __future__ import annotations

import stat
import threading

from conftest import WORKLOAD, make_migration, make_workload

from webapp import create_app


def test_parallel_creates_of_one_ip_have_exactly_one_winner(app, config):
    apps = [create_app(config) for _ in range(8)]  # separate engines: separate connections
    barrier = threading.Barrier(len(apps))

    def create(each_app, ip, statuses):
        client = each_app.test_client()
        barrier.wait()
        statuses.append(client.post("/api/v1/workloads", json={**WORKLOAD, "ip": ip}).status_code)

    for round_ in range(5):
        statuses: list[int] = []
        threads = [threading.Thread(target=create, args=(a, f"10.5.0.{round_}", statuses)) for a in apps]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(statuses) == [201] + [409] * 7
    assert app.test_client().get("/api/v1/workloads").json["total"] == 5


def test_a_restart_keeps_every_record_and_can_still_read_the_secrets(config):
    config = {k: v for k, v in config.items() if k not in ("SECRET_KEY", "CREDENTIALS_KEY")}
    first = create_app(config)
    client = first.test_client()
    source = make_workload(client)
    migration = make_migration(client, source["id"])
    first.extensions["db"].kw["bind"].dispose()

    second = create_app(config)  # same DATA_DIR and database: keys are read back from DATA_DIR
    assert second.config["CREDENTIALS_KEY"] == first.config["CREDENTIALS_KEY"]
    again = second.test_client()
    assert again.get(f"/api/v1/workloads/{source['id']}").json == source
    assert again.get(f"/api/v1/migrations/{migration['id']}").json == migration
    # decrypting works: an edit that keeps the password re-validates the stored credentials
    assert again.patch(f"/api/v1/workloads/{source['id']}", json={"storage": [{"name": "C:", "size": 1}]}).status_code == 200


def test_generated_secrets_are_private_files_reused_on_the_next_start(tmp_path, monkeypatch):
    from webapp.config import ensure_secrets

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_KEY", raising=False)
    first = ensure_secrets(tmp_path)
    for name in ("secret_key", "credentials_key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert ensure_secrets(tmp_path) == first
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert ensure_secrets(tmp_path)["SECRET_KEY"] == "from-env"
