"""Bulk seeding for the list benchmarks: workloads and migrations inserted with SQLAlchemy Core, checked against
the app's own column types and read back through its models. Module-level imports are standard library only.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Callable

# --- seeding ------------------------------------------------------------------------------------------------

STORAGE = [{"name": "C:\\", "size": 40}, {"name": "D:\\", "size": 100}]
CLOUDS = ("aws", "azure", "vsphere", "vcloud")
# The state mix of the seeded migrations, out of 20.
STATE_MIX = ["success"] * 9 + ["not_started"] * 6 + ["error"] * 3 + ["running"] * 2


def ip_for(i: int) -> str:
    """A distinct IPv4 address for every i below 2**24."""
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield start, min(total, start + size)


def seed(engine, workloads: int, migrations: int, password_enc: str, chunk: int = 50_000) -> dict[str, float]:
    """Bulk-insert ``workloads`` workloads and ``migrations`` migrations with SQLAlchemy Core, ``chunk`` rows per
    transaction. Every row reuses ``password_enc`` (one real ciphertext of the app's vault).

    Speed: the JSON and datetime values are turned into their stored text here, once per distinct JSON value, and
    inserted through untyped Core columns, instead of running the column types' bind processors 1.4 million
    times. ``_stored`` checks, against the app's own column types, that the text is exactly what they store.
    Returns seconds per table."""
    from sqlalchemy import column, insert, table

    from webapp.models import MigrationRow, WorkloadRow

    to_text = _stored(engine, WorkloadRow.__table__.c.created_at, WorkloadRow.__table__.c.storage)
    json_text = to_text["json"]
    when = to_text["datetime"]
    base = datetime.now(timezone.utc) - timedelta(seconds=workloads + migrations + 10)
    timings = {}

    t0 = time.perf_counter()
    wtable = table(WorkloadRow.__tablename__, *(column(c.name) for c in WorkloadRow.__table__.columns))
    storage = json_text(STORAGE)
    for lo, hi in _chunks(workloads, chunk):
        rows = []
        for i in range(lo, hi):
            stamp = when(base + timedelta(seconds=i))
            rows.append({"id": i + 1, "ip": ip_for(i + 1), "username": f"admin{i % 100}", "password_enc": password_enc,
                         "domain": "CORP" if i % 3 else "", "storage": storage, "created_at": stamp,
                         "updated_at": stamp})
        with engine.begin() as conn:
            conn.execute(insert(wtable), rows)
    timings["workloads"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mtable = table(MigrationRow.__tablename__, *(column(c.name) for c in MigrationRow.__table__.columns))
    mbase = base + timedelta(seconds=workloads)
    cache: dict[tuple, str] = {}

    def cached(key, make):
        if key not in cache:
            cache[key] = json_text(make())
        return cache[key]

    for lo, hi in _chunks(migrations, chunk):
        rows = []
        for i in range(lo, hi):
            state = STATE_MIX[i % len(STATE_MIX)]
            both = i % 2 == 0
            sizes = STORAGE if both else STORAGE[:1]
            factor = {"success": 1.0, "running": 1 / 3}.get(state, 0.0)
            source = (i % workloads) + 1
            created = mbase + timedelta(seconds=i)
            started = when(created + timedelta(seconds=1)) if state in ("success", "running", "error") else None
            finished = when(created + timedelta(seconds=21)) if state in ("success", "error") else None
            created_text = when(created)
            rows.append({
                "id": i + 1, "source_id": source,
                "selected": cached(("selected", both), lambda: [v["name"] for v in sizes]),
                "cloud_type": CLOUDS[i % 4], "cloud_username": "cloud", "cloud_password_enc": password_enc,
                "cloud_domain": "",
                "target_vm": (json_text({"ip": ip_for(source),
                                         "credentials": {"username": "admin", "domain": "CORP",
                                                         "password_enc": password_enc},
                                         "storage": list(sizes)}) if state == "success" else None),
                "state": state, "error": "cancelled" if state == "error" else None,
                "progress": cached(("progress", both, factor), lambda: [
                    {"name": v["name"], "size": v["size"], "copied": round(v["size"] * factor, 3)} for v in sizes]),
                "cancel_requested": 0, "job_id": f"migration-{i + 1}-seed" if started else None,
                "requested_by": None, "created_at": created_text, "updated_at": finished or created_text,
                "queued_at": started, "started_at": started, "heartbeat_at": finished or started,
                "finished_at": finished,
            })
        with engine.begin() as conn:
            conn.execute(insert(mtable), rows)
    timings["migrations"] = time.perf_counter() - t0
    return timings


def check_seed(app, workloads: int, migrations: int) -> None:
    """Read seeded rows back through the app's ORM models: counts, types and values as the app expects them."""
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import MigrationRow, WorkloadRow

    with app.app_context():
        session = db.session
        counts = (session.scalar(select(func.count()).select_from(WorkloadRow)),
                  session.scalar(select(func.count()).select_from(MigrationRow)))
        if counts != (workloads, migrations):
            raise RuntimeError(f"seed: expected {workloads} workloads and {migrations} migrations, found {counts}")
        if workloads:
            w = session.get(WorkloadRow, workloads)
            assert w.storage == STORAGE and w.created_at.tzinfo is not None and w.ip == ip_for(workloads), w
        if migrations:
            m = session.get(MigrationRow, 1)
            assert m.selected and m.progress[0]["name"] == "C:\\" and m.created_at.tzinfo is not None, m
            assert m.state in STATE_MIX and isinstance(m.cancel_requested, bool), m


def _stored(engine, datetime_column, json_column) -> dict[str, Callable]:
    """Fast converters to the text SQLite stores for the app's datetime and JSON columns, checked against the
    columns' own bind processors (so a change of column type or format fails here, not silently)."""
    import json

    dialect = engine.dialect

    def typed(col, value):
        processor = col.type.dialect_impl(dialect).bind_processor(dialect)
        return processor(value) if processor else value

    def when(value: datetime) -> str:
        return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

    def json_text(value) -> str:
        return json.dumps(value)

    sample_time = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    if typed(datetime_column, sample_time) != when(sample_time):
        raise RuntimeError(f"seed: {datetime_column} stores {typed(datetime_column, sample_time)!r}, "
                           f"not {when(sample_time)!r}")
    if typed(json_column, STORAGE) != json_text(STORAGE):
        raise RuntimeError(f"seed: {json_column} stores {typed(json_column, STORAGE)!r}")
    return {"datetime": when, "json": json_text}


RUN_STATE_MIX = ["success"] * 14 + ["failed"] * 3 + ["error"] + ["cancelled"] * 2  # of the finished runs, out of 20
EVENT_STATUS_MIX = ["processed"] * 18 + ["failed"] + ["pending"]  # out of 20


def seed_runs_events(engine, runs: int, events: int, recent: int = 1000, waiting: int = 40,
                     chunk: int = 50_000) -> dict[str, float]:
    """Bulk-insert ``runs`` test runs and ``events`` events (SQLAlchemy Core, stored text checked as ``seed`` does).
    Runs: finished ones with a summary, tests and a JUnit report (~1 KiB), ``recent`` of them finished in the last
    hour, the others older; then one running and ``waiting`` queued runs spread over 20 environments. Events: the
    status mix above (failed ones after 3 webhook attempts). Returns seconds per table."""
    from sqlalchemy import column, insert, table

    from webapp.models import EventRow, RunRow

    to_text = _stored(engine, RunRow.__table__.c.created_at, RunRow.__table__.c.test_files)
    when, json_text = to_text["datetime"], to_text["json"]
    now = datetime.now(timezone.utc)
    files = json_text(["sample_tests/test_passing.py"])
    summary = json_text({"total": 3, "passed": 3, "failed": 0, "errors": 0, "skipped": 0})
    tests = json_text([{"name": f"test_{k}", "outcome": "passed", "duration": 0.01} for k in range(3)])
    junit = "<testsuites>" + "<testcase classname='t' name='x' time='0.01'/>" * 20 + "</testsuites>"
    timings = {}
    t0 = time.perf_counter()
    rtable = table(RunRow.__tablename__, *(column(c.name) for c in RunRow.__table__.columns))
    active = 1 + waiting
    finished = max(0, runs - active)
    for lo, hi in _chunks(runs, chunk):
        rows = []
        for i in range(lo, hi):
            if i < finished:
                end = now - (timedelta(seconds=(finished - i) * 3600 / max(1, recent)) if finished - i <= recent
                             else timedelta(hours=2, seconds=finished - i))
                state = RUN_STATE_MIX[i % 20]
                started = None if state == "cancelled" else end - timedelta(seconds=2 + i % 7)
                created = (started or end) - timedelta(seconds=1 + i % 5)
            else:
                state = "running" if i == finished else "queued"
                created, started, end = now - timedelta(seconds=runs - i), None, None
                started = created + timedelta(seconds=1) if state == "running" else None
            rows.append({"id": i + 1, "username": f"user{i % 50}", "environment_id": 1 + i % 20, "test_files": files,
                         "state": state, "exit_code": 0 if end else None, "summary": summary if end else None,
                         "tests": tests if end else None, "junit_xml": junit if end else None, "error": None,
                         "lock_token": "seed" if state == "running" else None, "job_id": None, "cancel_requested": 0,
                         "log_size": 2048, "sandbox_mode": "landlock+pidns", "sandbox_detail": "seeded",
                         "created_at": when(created), "dispatched_at": when(created) if started else None,
                         "started_at": when(started) if started else None,
                         "heartbeat_at": when(started) if started else None,
                         "finished_at": when(end) if end else None})
        with engine.begin() as conn:
            conn.execute(insert(rtable), rows)
    timings["runs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    etable = table(EventRow.__tablename__, *(column(c.name) for c in EventRow.__table__.columns))
    for lo, hi in _chunks(events, chunk):
        rows = []
        for i in range(lo, hi):
            status, stamp = EVENT_STATUS_MIX[i % 20], when(now - timedelta(seconds=events - i))
            rows.append({"id": f"{i:08d}-0000-4000-8000-000000000000", "user_id": f"user{i % 50}",
                         "description": f"run #{i} ended", "status": status, "source": "system", "link": None,
                         "attempts": 3 if status == "failed" else int(status == "processed"),
                         "last_error": "webhook failed after 3 attempts: 500" if status == "failed" else None,
                         "created_at": stamp, "queued_at": stamp, "processed_at": stamp if status == "processed" else None})
        with engine.begin() as conn:
            conn.execute(insert(etable), rows)
    timings["events"] = time.perf_counter() - t0
    return timings
