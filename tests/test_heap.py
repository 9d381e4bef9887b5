"""webapp.heap: a worker leaves what it loaded once out of garbage collection, before its first job."""
from __future__ import annotations

import gc

from webapp import heap, workers
from webapp.extensions import Queues

CALLS: list[str] = []


class Loaded:
    """An object a process made while warming up."""


def job() -> None:
    CALLS.append("job")


def test_freeze_moves_every_live_object_out_of_the_collectors_reach_and_later_ones_stay_in():
    loaded = Loaded()
    try:
        frozen = heap.freeze()
        assert frozen == gc.get_freeze_count() > 1000  # the interpreter, pytest and the app: far more than a few
        later = Loaded()
        tracked = gc.get_objects()
        assert not any(o is loaded for o in tracked), "frozen: full collections no longer walk it"
        assert any(o is later for o in tracked), "made afterwards: collected as usual"
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def test_a_worker_freezes_its_heap_after_its_warm_up_and_before_any_job(app, monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(workers, "warm_up", lambda a: CALLS.append("warm_up"))
    monkeypatch.setattr(heap, "freeze", lambda: CALLS.append("freeze") or 0)
    app.extensions["queues"][Queues.NAMES[0]].enqueue(job)
    workers.start_worker(app, burst=True)
    assert CALLS == ["warm_up", "freeze", "job"]
