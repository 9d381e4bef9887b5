"""Queue visibility's operation and shapes (``webapp/api/runs.py`` get_pool, ``runs.queueing``)."""
from __future__ import annotations

from ...domain.pools import LABEL, LABEL_RULE
from ...domain.queueing import RECENT
from .builders import Schema, array, errors, integer, number, obj, ok, operation, ref, string

QUEUE = ("Ids of the waiting runs (queued, not yet given an environment) that could start there, in the order they "
         "will start: high priority first (a normal run that waited longer than PRIORITY_AGING_MINUTES counts as "
         "high), then by id.")
WAIT_P50 = number(nullable=True, minimum=0, description=(
    "The median wait, in seconds, of the runs given an environment in the last hour ((dispatched_at or "
    "started_at) − created_at); null when none was."))
POSITION = integer(nullable=True, minimum=0, description=(
    "While queued: 1 + the waiting runs ordered before it that compete with it (for an environment: those that "
    "could start there; for a pool run: those that could start on an enabled environment of its pool); "
    "0 = given the environment, starting. null once it started."))
ESTIMATE = number(nullable=True, minimum=0, description=(
    f"While queued: about how many seconds until it starts, from the median duration of the last {RECENT} runs "
    "finished on its environment (a pool: on the pool's environments, shared by how many are enabled) and the "
    "current run's elapsed time (a held environment: not before the hold ends). 0 = starting; null when not "
    "queued or with no finished run to go by."))


def queue_schemas() -> dict[str, Schema]:
    return {
        "Pool": obj({
            "label": string(), "environments": array(integer(minimum=1), description=(
                "The enabled environments carrying the label: where its runs may start.")),
            "queue": array(integer(minimum=1), description=(
                "The waiting runs that could start on at least one of them (and the pool's own), in start order.")),
            "waiting": integer(minimum=0, description="How many: the length of `queue`."),
            "wait_p50_seconds": {**WAIT_P50, "description": "Over the runs given any of its environments in the "
                                                            "last hour; null when none was."},
        }),
    }


def queue_paths() -> dict:
    label = {"name": "label", "in": "path", "required": True, "description": f"A label: {LABEL_RULE}.",
             "schema": string(pattern=f"^{LABEL.pattern}$")}
    return {
        "/api/v1/pools/{label}": {
            "get": operation("getPool", "environments", "Read a pool's queue", {
                "200": ok("The pool (a label no environment carries is an empty pool).", ref("Pool")),
                **errors(422, t422="Not a label (`validation_error`, field `label`).")}, params=[label]),
        },
    }
