"""Bodies and forms → checked values or domain objects: workloads, migrations, runs, uploads, environment and event
edits, accounts and tokens. Errors come back as ``ValidationError`` keyed by dotted field paths (``storage.0.size``)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..domain import accounts, environments, events, pools, variables
from ..domain.errors import ImmutableFieldError, ValidationError, check_all
from ..domain.migration import Migration, MigrationTarget
from ..domain.testfiles import MAX_UPLOAD_BYTES
from ..domain.workloads import Credentials, MountPoint, Workload
from .errors import Errors, object_of
from .validation import validation

MAX_ID = 2**31 - 1  # the largest key every database stores (INTEGER on PostgreSQL)


def credentials(data: Any, *, path: str, keep: Credentials | None = None) -> Credentials:
    """Credentials from ``{"username", "password", "domain"}``; a blank password keeps ``keep``'s."""
    data = object_of(data, path, "Credentials")
    password = data.get("password")
    if keep is not None and password in (None, ""):
        password = keep.password
    domain = data.get("domain", keep.domain if keep else "")
    try:
        return Credentials(data.get("username"), password, "" if domain is None else domain)
    except ValidationError as exc:
        raise exc.prefixed(path) from None


def storage(data: Any) -> list[MountPoint]:
    if not isinstance(data, list):
        raise ValidationError.single("storage", "Storage must be a list of volumes.")
    errors, mounts = Errors(), []
    for index, item in enumerate(data):
        try:
            item = object_of(item, "", "A volume")
            mounts.append(MountPoint(item.get("name"), item.get("size")))
        except ValidationError as exc:
            errors.absorb(exc, f"storage.{index}")
    errors.raise_if_any()
    return mounts


def _check_immutable(data: Mapping, current: Mapping, names: tuple[str, ...]) -> None:
    changed = {n: ["This field cannot be changed."] for n in names if n in data and data[n] != current.get(n)}
    if changed:
        raise ImmutableFieldError(changed, "Fields that cannot be changed were sent with new values: "
                                  + ", ".join(changed) + ".")


def workload(data: Any, existing: Workload | None = None) -> Workload:
    """A new workload from input, or ``existing`` updated by it (fields not sent stay unchanged)."""
    data = object_of(data, "", "The body")
    errors = Errors()
    if existing is not None:
        if "ip" in data:
            try:
                existing.ip = data["ip"]  # the domain refuses a different IP
            except ImmutableFieldError as exc:
                raise ImmutableFieldError(exc.fields, "The IP address of a workload can never change.") from None
        ip = existing.ip
    else:
        ip = data.get("ip")
    creds, mounts = (existing.credentials, existing.storage) if existing else (None, [])
    if "credentials" in data or existing is None:
        try:
            creds = credentials(data.get("credentials"), path="credentials", keep=existing and existing.credentials)
        except ValidationError as exc:
            errors.absorb(exc)
    if "storage" in data:
        try:
            mounts = storage(data["storage"])
        except ValidationError as exc:
            errors.absorb(exc)
    try:
        built = Workload(ip, creds if creds is not None else _placeholder_credentials(), mounts)
    except ValidationError as exc:
        errors.absorb(exc)
        built = None
    errors.raise_if_any()
    return built


def _placeholder_credentials() -> Credentials:
    return Credentials("-", "-")  # only to keep validating the rest when credentials were invalid


def migration(
    data: Any,
    load_source: Callable[[int], Workload | None],
    existing: Migration | None = None,
    current: Mapping | None = None,
    *, file_exists: Callable[[str], bool] | None = None, environment_enabled: Callable[[int], bool] | None = None,
) -> tuple[int, Migration]:
    """``(source_id, Migration)`` from input; with ``existing``, an update where unsent fields stay.

    ``current`` is the migration's JSON shape, used to refuse changes to fields that can never change.
    ``validation`` (the test run its target must pass) is checked with ``file_exists`` and ``environment_enabled``.
    """
    data = object_of(data, "", "The body")
    if existing is not None:
        _check_immutable(data, current or {}, ("id", "source_id", "state", "phase", "created_at", "started_at",
                                               "finished_at"))
    errors = Errors()
    plan = existing.validation if existing is not None else None
    if "validation" in data:
        try:
            plan = validation(data["validation"], file_exists or (lambda _: False),
                              environment_enabled or (lambda _: False), (current or {}).get("validation"))
        except ValidationError as exc:
            errors.absorb(exc)
    source_id = data.get("source_id") if existing is None else (current or {}).get("source_id")
    source = existing.source if existing is not None else None
    if existing is None:
        if isinstance(source_id, bool) or not isinstance(source_id, int):
            errors.add("source_id", "Choose a source workload (its id).")
        else:
            source = load_source(source_id) if 1 <= source_id <= MAX_ID else None
            if source is None:
                errors.add("source_id", f"No workload has id {source_id}.")
    target_data = data.get("target", {} if existing else None)
    cloud_type = existing.target.cloud_type.value if existing else None
    cloud_creds = existing.target.cloud_credentials if existing else None
    try:
        target_data = object_of(target_data, "target", "Target")
        cloud_type = target_data.get("cloud_type", cloud_type)
        if "cloud_credentials" in target_data or existing is None:
            cloud_creds = credentials(target_data.get("cloud_credentials"), path="target.cloud_credentials",
                                      keep=cloud_creds)
    except ValidationError as exc:
        errors.absorb(exc)
    target = None
    try:
        target = MigrationTarget(cloud_type, cloud_creds or _placeholder_credentials())
    except ValidationError as exc:
        errors.absorb(exc, "target")
    selected = data.get("selected_mount_points", existing.selected_mount_points if existing else None)
    built = None
    if source is not None and target is not None:
        try:
            built = Migration(selected if selected is not None else [], source, target)
        except ValidationError as exc:
            errors.absorb(exc)
    elif selected is None or not isinstance(selected, list):
        errors.add("selected_mount_points", "Select at least one volume.")
    errors.raise_if_any()
    if existing is not None:
        built.state, built.error, built.progress = existing.state, existing.error, existing.progress
    built.validation = plan
    return source_id, built


def acting_as(data: Any, field: str, username: str) -> str:
    """The signed-in account, which a request may name in ``field`` but never replace by another."""
    data = object_of(data, "", "The body")
    value = data.get(field)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", username)):
        return username
    raise ValidationError.single(field, f"This is always the signed-in account ({username}): leave it out "
                                        "or send your own username.")


def upload(files: Mapping, form: Mapping[str, str]) -> dict:
    """A multipart upload (fields ``file``, ``directory``, ``overwrite``) → arguments for the upload service."""
    file = files.get("file")
    errors = Errors()
    if file is None or not file.filename:
        errors.add("file", "Choose a test file to upload.")
    if not (form.get("directory") or "").strip():
        errors.add("directory", "Choose a directory, or type a new name.")
    errors.raise_if_any()
    return {"filename": file.filename, "directory": form["directory"], "data": file.read(MAX_UPLOAD_BYTES + 1),
            "overwrite": (form.get("overwrite") or "").lower() in ("true", "1", "yes", "on")}


# ---- edits of environments and events ---------------------------------------------------------------

def environment_changes(data: Any, file_exists: Callable[[str], bool] = lambda _p: False,
                        variables_now: Mapping[str, str] | None = None,
                        secrets_now: Callable[[], Mapping[str, str]] = dict) -> dict:
    """The fields an admin sends to change an environment (only those), checked together. ``variables`` and
    ``secrets`` come back merged into ``variables_now`` / ``secrets_now()`` (asked only when secrets are sent):
    a name → a value, or null to delete it; names not sent stay. ``setup``/``teardown``: a test file or null."""
    data = object_of(data, "", "The body")
    errors, clean = Errors(), {}
    checks = {"name": environments.check_name, "description": environments.check_description,
              "enabled": environments.check_enabled, "labels": pools.check_labels,
              "setup": lambda v: environments.check_stage_file(v, "setup", file_exists),
              "teardown": lambda v: environments.check_stage_file(v, "teardown", file_exists),
              "variables": lambda v: variables.merged(variables_now or {}, v, "variables", deletable=True),
              "secrets": lambda v: variables.merged(secrets_now(), v, "secrets", deletable=True)}
    for name in data:
        if name not in checks:
            errors.add(name, "This field cannot be changed.")
            continue
        try:
            clean[name] = checks[name](data[name])
        except ValidationError as exc:
            errors.absorb(exc)
    errors.raise_if_any()
    return clean


EVENT_READ_ONLY = ("id", "source", "link", "attempts", "last_error", "created_at", "processed_at")


def event_changes(data: Any, current: Mapping) -> tuple[dict, "events.EventStatus"]:
    """``(edits, status)`` of an event update: changed user_id/description, and the status wanted (its
    transition checked), against the event's JSON shape ``current``."""
    data = object_of(data, "", "The body")
    _check_immutable(data, current, EVENT_READ_ONLY)
    errors, edits = Errors(), {}
    for name, check in (("user_id", events.check_user_id), ("description", events.check_description)):
        if name in data and data[name] != current[name]:
            try:
                edits[name] = check(data[name])
            except ValidationError as exc:
                errors.absorb(exc)
    status = events.EventStatus(current["status"])
    wanted = events.check_transition(status, data["status"]) if "status" in data else status
    errors.raise_if_any()
    return edits, wanted


# ---- accounts and tokens ----------------------------------------------------------------------------

def user(data: Any) -> dict:
    return check_all(object_of(data, "", "The body"), (
        ("username", accounts.check_username), ("password", accounts.check_password),
        ("role", lambda v: accounts.check_role(v if v is not None else "viewer")),
        ("display_name", accounts.check_display_name)))


def _check_disabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.single("disabled", "Disabled must be true or false.")
    return value


def user_changes(data: Any, username: str, own: bool) -> dict:
    """What an admin changes about the account ``username`` (fields not sent stay); ``own``: their own account,
    which they may not lower or disable."""
    data = object_of(data, "", "The body")
    errors = Errors()
    for name in sorted(set(data) - {"role", "disabled", "display_name", "password", "username"}):
        errors.add(name, "Unknown field.")
    if "username" in data and data["username"] != username:
        errors.add("username", "A username never changes.")
    try:
        changes = check_all(data, (("role", lambda v: accounts.check_role(v).value),
                                   ("display_name", accounts.check_display_name), ("password", accounts.check_password),
                                   ("disabled", _check_disabled)), only_given=True)
    except ValidationError as exc:
        errors.absorb(exc)
        changes = {}
    if own and (changes.get("disabled") or changes.get("role", accounts.Role.ADMIN.value) != accounts.Role.ADMIN.value):
        errors.add("role" if "role" in changes else "disabled",
                   "You cannot lower or disable your own account: ask another admin.")
    errors.raise_if_any()
    return changes


def token(data: Any, own_role: "accounts.Role") -> dict:
    """``{"name", "role", "expires_in_days"}`` of a new API token; its role at most ``own_role``."""
    return check_all(object_of(data, "", "The body"), (
        ("name", accounts.check_token_name), ("role", lambda v: accounts.check_token_role(v, own_role)),
        ("expires_in_days", accounts.check_expiry_days)))
