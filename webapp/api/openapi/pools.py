"""What pools and priorities (issue 13) add to the document: environment labels (read, PATCH, ``?label=``), a
run's ``pool`` and ``priority`` (sent and read, ``?pool=`` on the list), a schedule's pool."""
from __future__ import annotations

from ...domain.pools import LABEL, LABEL_RULE, MAX_LABELS, PRIORITIES
from .builders import Schema, array, enum, integer, query, string

LABEL_SCHEMA = string(pattern=f"^{LABEL.pattern}$", minLength=1, maxLength=32, examples=["linux"],
                      description=f"A label: {LABEL_RULE}.")
POOL_TEXT = ("Instead of environment_id (exactly one of the two, else 422): the first free enabled environment "
             "carrying this label; the run waits (environment_id null) until one is free. A label no enabled "
             "environment carries is refused (422, field `pool`).")
PRIORITY_TEXT = ("high runs start before normal ones waiting for the same environment, in creation order within a "
                 "priority; a normal run that has waited longer than PRIORITY_AGING_MINUTES (30) counts as high.")


def amend_schemas(schemas: dict[str, Schema]) -> None:
    env, patch = schemas["Environment"], schemas["EnvironmentPatch"]
    env["properties"]["labels"] = array(LABEL_SCHEMA, maxItems=MAX_LABELS, description="Its pools' labels.")
    env["required"].append("labels")
    patch["properties"]["labels"] = {
        "oneOf": [array(LABEL_SCHEMA, maxItems=MAX_LABELS), string(description="Separated by commas or spaces.")],
        "description": f"Admins: 0 to {MAX_LABELS} labels (duplicates dropped); replaces the labels."}
    run = schemas["Run"]
    run["properties"]["environment_id"] = integer(nullable=True, minimum=1, description=(
        "null while a pool run waits: it is given an environment of its pool when one is free."))
    run["properties"]["pool"] = string(nullable=True, description="The label it asked for (null: an environment).")
    run["properties"]["priority"] = enum(PRIORITIES, description=PRIORITY_TEXT)
    run["required"] += ["pool", "priority"]
    given = schemas["RunInput"]
    given["properties"]["pool"] = {**LABEL_SCHEMA, "description": POOL_TEXT}
    given["properties"]["priority"] = enum(PRIORITIES, default="normal", description=PRIORITY_TEXT)
    given["required"] = ["test_files"]
    for name in ("ScheduleInput", "ScheduleChanges"):
        fields = schemas[name]["properties"]
        fields["pool"] = {**LABEL_SCHEMA, "type": ["string", "null"], "description": (
            "Instead of environment_id (exactly one of the two): its runs ask for this pool.")}
        fields["priority"] = {**fields["priority"], "description": "Its runs' priority: " + PRIORITY_TEXT}
        if "required" in schemas[name]:
            schemas[name]["required"] = [f for f in schemas[name]["required"] if f != "environment_id"]


def amend_paths(paths: dict) -> None:
    runs = paths["/api/v1/runs"]["get"]
    runs["parameters"].append(query("pool", LABEL_SCHEMA, "Only runs that asked for this pool."))
    listing = paths["/api/v1/environments"]["get"]
    listing.setdefault("parameters", []).append(query("label", LABEL_SCHEMA, "Only environments carrying this label "
                                                                             "(a malformed label: 422)."))
    listing["responses"].setdefault("422", runs["responses"]["422"])
