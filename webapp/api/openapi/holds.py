"""The environment holds' operations and shape (``webapp/api/holds.py``, ``environments.holds.as_json``)."""
from __future__ import annotations

from ...domain.holds import MAX_MINUTES, MIN_MINUTES, REASON_MAX
from ...domain.runs import ENVIRONMENT_IDS
from .builders import Schema, boolean, errors, integer, json_body, obj, ok, operation, path_id, ref, string, timestamp

HOLD = {"anyOf": [ref("Hold"), {"type": "null"}],
        "description": "Who holds it, why and until when; null when not held (an ended hold is null)."}


def hold_schemas() -> dict[str, Schema]:
    return {
        "Hold": obj({"by": string(description="The operator who holds it (`cutover`: Cutover itself, after a "
                                              "teardown that failed or never ran)."), "reason": string(),
                     "until": timestamp(description="UTC; the maintenance loop then releases it and tells them."),
                     "until_released": boolean(description=(
                         "Cutover's own hold: it lasts until an admin releases it (`until` is then far in the "
                         "future and never reached); operators may neither release nor replace it (403)."))}),
        "HoldInput": obj({
            "minutes": integer(minimum=MIN_MINUTES, maximum=MAX_MINUTES, description="How long, from now."),
            "reason": string(minLength=1, maxLength=REASON_MAX, pattern=r"\S"),
        }, description="Any other field is refused (422)."),
    }


def hold_paths() -> dict:
    eid = {**path_id("environment_id", "environment"),
           "schema": integer(minimum=ENVIRONMENT_IDS[0], maximum=ENVIRONMENT_IDS[-1])}
    return {
        "/api/v1/environments/{environment_id}/hold": {
            "post": operation("holdEnvironment", "environments", "Hold an environment", {
                "200": ok("Held: no new run starts there until released or the hold ends.", ref("Environment")),
                **errors(400, 403, 404, 413, 422)}, params=[eid], body=json_body(ref("HoldInput")), description=(
                "The running run finishes; waiting runs keep their place. Holding a held environment replaces "
                "its hold (holder, reason and end). Operators and admins; audited `environment.hold`.")),
        },
        "/api/v1/environments/{environment_id}/release": {
            "post": operation("releaseEnvironment", "environments", "Release a held environment", {
                "200": ok("Released: the next waiting run starts at once.", ref("Environment")),
                **errors(403, 404, 409, t409="The environment is not held (`invalid_state`).")}, params=[eid],
                description="Operators and admins; audited `environment.release`."),
        },
    }
