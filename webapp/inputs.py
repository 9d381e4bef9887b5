"""The one validation layer: plain input (a JSON body, or a form turned into the same shape) → domain objects.

The HTML forms and the JSON API both call these functions; the rules themselves live in the domain
classes. Errors come back as ``ValidationError`` keyed by dotted field paths (``storage.0.size``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .domain.errors import ImmutableFieldError, ValidationError
from .domain.migration import Credentials, Migration, MigrationTarget, MountPoint, Workload

MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 50
MAX_ID = 2**31 - 1  # the largest key every database stores (INTEGER on PostgreSQL)


class _Errors:
    """Collects messages from several parts before raising them together."""

    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.fields.setdefault(path, []).append(message)

    def absorb(self, exc: ValidationError, prefix: str = "") -> None:
        for key, messages in exc.fields.items():
            path = f"{prefix}.{key}" if prefix and key else (prefix or key)
            self.fields.setdefault(path, []).extend(messages)

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationError(self.fields)


def _object(data: Any, path: str, what: str) -> Mapping:
    if not isinstance(data, Mapping):
        raise ValidationError.single(path, f"{what} must be an object.")
    return data


def credentials(data: Any, *, path: str, keep: Credentials | None = None) -> Credentials:
    """Credentials from ``{"username", "password", "domain"}``; a blank password keeps ``keep``'s."""
    data = _object(data, path, "Credentials")
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
    errors, mounts = _Errors(), []
    for index, item in enumerate(data):
        try:
            item = _object(item, "", "A volume")
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
    data = _object(data, "", "The body")
    errors = _Errors()
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
) -> tuple[int, Migration]:
    """``(source_id, Migration)`` from input; with ``existing``, an update where unsent fields stay.

    ``current`` is the migration's JSON shape, used to refuse changes to fields that can never change.
    """
    data = _object(data, "", "The body")
    if existing is not None:
        _check_immutable(data, current or {}, ("id", "source_id", "state", "created_at", "started_at", "finished_at"))
    errors = _Errors()
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
        target_data = _object(target_data, "target", "Target")
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
    return source_id, built


def page(args: Mapping[str, str]) -> tuple[int, int]:
    """``?page=&per_page=``: page from 1; per_page default 50, at most 500."""
    errors = _Errors()
    values = {}
    for name, default in (("page", 1), ("per_page", DEFAULT_PER_PAGE)):
        raw = args.get(name)
        try:
            values[name] = default if raw in (None, "") else int(raw)
            if not 1 <= values[name] <= 10**9:
                raise ValueError
        except (TypeError, ValueError):
            errors.add(name, f"{name} must be a whole number of 1 or more.")
    errors.raise_if_any()
    return values["page"], min(values["per_page"], MAX_PER_PAGE)


def acting_as(data: Any, field: str, username: str) -> str:
    """The signed-in account, which a request may name in ``field`` but never replace by another."""
    data = _object(data, "", "The body")
    value = data.get(field)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", username)):
        return username
    raise ValidationError.single(field, f"This is always the signed-in account ({username}): leave it out "
                                        "or send your own username.")


def offset(args: Mapping[str, str]) -> int:
    """``?offset=N`` of a log: a whole number; past any log's end it means "the end"."""
    raw = args.get("offset") or "0"
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationError.single("offset", "offset must be a whole number of 0 or more.")
    return int(raw) if len(raw) <= 18 else 10**18


def upload(files: Mapping, form: Mapping[str, str]) -> dict:
    """A multipart upload (fields ``file``, ``directory``, ``overwrite``) → arguments for the upload service."""
    file = files.get("file")
    errors = _Errors()
    if file is None or not file.filename:
        errors.add("file", "Choose a test file to upload.")
    if not (form.get("directory") or "").strip():
        errors.add("directory", "Choose a directory, or type a new name.")
    errors.raise_if_any()
    return {"filename": file.filename, "directory": form["directory"], "data": file.read(1024 * 1024 + 1),
            "overwrite": (form.get("overwrite") or "").lower() in ("true", "1", "yes", "on")}
