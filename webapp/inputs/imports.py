"""A bulk import's input → checked workloads: a CSV file (``ip,username,password,domain,volumes``) or a JSON list
of workload inputs. Each row goes through ``bodies.workload``, the same check as a single create; errors are keyed
``rows.<n>.<field>`` (rows count from 0: the first data row after the CSV header is row 0).

Field names: a CSV row's errors name its columns (``rows.3.username``, ``rows.3.volumes``: the volumes column,
the message naming the volume); a JSON row's name the workload input's paths (``rows.3.credentials.username``,
``rows.3.storage.1.size``). A whole row refused (wrong number of values) is ``rows.<n>``; the file itself is
``file`` (empty, not UTF-8, unreadable) or ``header`` (a missing, unknown or repeated column).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..domain.errors import UploadTooLarge, ValidationError
from ..domain.imports import CSV_COLUMNS, MAX_CELL_CHARS, MAX_IMPORT_ROWS, MAX_VOLUMES, duplicate_messages
from ..domain.workloads import Workload
from .bodies import workload
from .errors import Errors

_BARE_DRIVE = re.compile(r"^[A-Za-z]:[\\/]?$")  # C:\ alone: a volume without its size
CSV_PATHS = {"credentials.username": "username", "credentials.password": "password",
             "credentials.domain": "domain", "credentials": "username"}


@dataclass
class Batch:
    """The rows of one import: what each row says, then (after ``check``) its workloads and every error."""

    csv: bool
    payloads: list[dict | None] = field(default_factory=list)  # a row's workload input (None: unreadable row)
    cells: list[dict[str, str]] = field(default_factory=list)  # a CSV row's cells, as written (for the preview)
    workloads: list[Workload] = field(default_factory=list)
    errors: Errors = field(default_factory=Errors)

    @property
    def count(self) -> int:
        return len(self.payloads)

    def add(self, row: int, name: str, message: str) -> None:
        self.errors.add(f"rows.{row}.{name}" if name else f"rows.{row}", message)

    def absorb(self, row: int, exc: ValidationError) -> None:
        for path, messages in exc.fields.items():
            for message in messages:
                self.add(row, *(_csv_field(path, message) if self.csv else (path, message)))

    def by_row(self) -> dict[int, dict[str, list[str]]]:
        """``{row: {field: messages}}`` (``""``: the whole row) of the errors of rows."""
        found: dict[int, dict[str, list[str]]] = {}
        for path, messages in self.errors.fields.items():
            head, _, rest = path.partition(".")
            number, _, name = rest.partition(".")
            if head == "rows" and number.isdigit():
                found.setdefault(int(number), {}).setdefault(name, []).extend(messages)
        return found

    def raise_if_any(self) -> None:
        if self.errors.fields:
            rows = len(self.by_row())
            raise ValidationError(self.errors.fields, f"Nothing was imported: {rows} of {self.count} rows have "
                                  "errors." if rows else "Nothing was imported: the file has errors.")


def _csv_field(path: str, message: str) -> tuple[str, str]:
    """A workload input's error path → the CSV column it is about (and the message, naming the volume)."""
    if path == "storage" or path.startswith("storage."):
        index = path.split(".")[1] if path.count(".") else ""
        return "volumes", f"Volume {int(index) + 1}: {message}" if index.isdigit() else message
    return CSV_PATHS.get(path, path), message


# --- CSV --------------------------------------------------------------------------------------------------

def _text(data: bytes | str) -> str:
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError.single("file", "The file is not UTF-8 text: save it as \"CSV UTF-8\".") from None
    data = data.removeprefix("\ufeff")
    if not data.strip():
        raise ValidationError.single("file", "The file is empty: it needs the header line "
                                             f"{','.join(CSV_COLUMNS)} and one line per workload.")
    return data


def _header(cells: list[str]) -> list[str]:
    names = [c.strip().lower() for c in cells]
    errors = Errors()
    missing = [c for c in CSV_COLUMNS if c not in names]
    unknown = [n or "(blank)" for n in names if n not in CSV_COLUMNS]
    repeated = sorted({n for n in names if n in CSV_COLUMNS and names.count(n) > 1})
    expected = f"The first line must be the header {','.join(CSV_COLUMNS)}."
    for what, found in (("Missing", missing), ("Unknown", unknown), ("Repeated", repeated)):
        if found:
            errors.add("header", f"{what} column{'s' * (len(found) > 1)}: {', '.join(found)}. {expected}")
    errors.raise_if_any()
    return names


def _volumes(text: str, batch: Batch, row: int) -> list[dict]:
    """``C:\\:40;D:\\:100`` → the workload input's storage (sizes in GiB); [] when it cannot be read (the row's
    other fields are still checked, its volumes refused)."""
    items = [item.strip() for item in text.split(";") if item.strip()]
    if len(items) > MAX_VOLUMES:
        batch.add(row, "volumes", f"At most {MAX_VOLUMES} volumes per workload.")
        return []
    storage, unreadable = [], False
    for number, item in enumerate(items, 1):
        name, sep, size = item.rpartition(":")
        if not sep or not name.strip() or _BARE_DRIVE.match(item):
            batch.add(row, "volumes", f"Volume {number} ({item}) has no size: write it as NAME:GiB, e.g. C:\\:40.")
            unreadable = True
            continue
        size = size.strip()
        storage.append({"name": name.strip(), "size": int(size) if size.isascii() and size.isdigit() else size})
    return [] if unreadable else storage


def _read_row(names: list[str], values: list[str], batch: Batch, row: int) -> dict | None:
    cells = {name: value.strip() for name, value in zip(names, values)}
    batch.cells.append({**cells, "password": "set" if cells.get("password") else ""})
    if len(values) != len(names):
        batch.add(row, "", f"This row has {len(values)} values; the header has {len(names)} columns.")
        return None
    long = [name for name, value in cells.items() if len(value) > MAX_CELL_CHARS]
    for name in long:
        batch.add(row, name, f"Too long: at most {MAX_CELL_CHARS} characters.")
    if long:
        return None
    return {"ip": cells["ip"], "credentials": {"username": cells["username"], "password": cells["password"],
                                               "domain": cells["domain"]},
            "storage": _volumes(cells["volumes"], batch, row)}


def csv_rows(data: bytes | str) -> Batch:
    """The rows of a CSV file (UTF-8, a BOM and CRLF line ends allowed; blank lines skipped; each cell trimmed).
    Refuses the file as a whole (``file``, ``header``) or, above ``MAX_IMPORT_ROWS`` rows, ``UploadTooLarge``."""
    reader = csv.reader(io.StringIO(_text(data), newline=""))
    batch = Batch(csv=True)
    try:
        lines = (values for values in reader if any(v.strip() for v in values))  # blank lines are no rows
        names = _header(next(lines))
        for values in lines:
            if batch.count >= MAX_IMPORT_ROWS:
                raise _too_many("file")
            row = batch.count
            batch.payloads.append(_read_row(names, values, batch, row))
    except csv.Error as exc:
        message = "a value is too long" if "field limit" in str(exc) else str(exc)
        raise ValidationError.single("file", f"Line {reader.line_num} cannot be read as CSV: {message}.") from None
    if not batch.count:
        raise ValidationError.single("file", "The file has a header but no rows: add one line per workload.")
    return batch


def _too_many(path: str) -> UploadTooLarge:
    exc = UploadTooLarge(f"More than {MAX_IMPORT_ROWS} rows: split the file and import each part.")
    exc.fields = {path: [exc.message]}
    return exc


# --- JSON ---------------------------------------------------------------------------------------------------

def json_rows(data: Any) -> Batch:
    """The rows of a JSON list of workload inputs (each the body ``POST /api/v1/workloads`` takes)."""
    if not isinstance(data, list):
        raise ValidationError.single("rows", "Send a JSON list of workloads, each as POST /api/v1/workloads takes.")
    if not data:
        raise ValidationError.single("rows", "Nothing to import: the list is empty.")
    if len(data) > MAX_IMPORT_ROWS:
        raise _too_many("rows")
    batch = Batch(csv=False)
    for row, item in enumerate(data):
        batch.payloads.append(item if isinstance(item, Mapping) else None)
        if not isinstance(item, Mapping):
            batch.add(row, "", "Each row must be a workload object.")
    return batch


# --- both -------------------------------------------------------------------------------------------------

def check(batch: Batch, stored: Callable[[list[str]], Mapping[str, int]]) -> Batch:
    """Check every row as a single create would, then their IPs against each other and against ``stored``
    (given IP addresses, it answers those already stored, as ``{ip: id}``). Raises nothing: see ``errors``."""
    ips = []
    for row, payload in enumerate(batch.payloads):
        if payload is None:
            continue
        try:
            built = workload(payload)
        except ValidationError as exc:
            batch.absorb(row, exc)
            continue
        batch.workloads.append(built)
        ips.append((row, built.ip))
    for row, message in sorted(duplicate_messages(ips, stored([ip for _, ip in ips])).items()):
        batch.add(row, "ip", message)
    return batch


def body_rows(mimetype: str, body: Callable[[], bytes], files: Mapping, parse_json: Callable[[], Any]) -> Batch:
    """The rows of an import request: a ``text/csv`` body (``body()`` reads it), the CSV file of the multipart
    field ``file``, or a JSON list (``parse_json()`` reads it, refusing malformed JSON)."""
    if mimetype == "multipart/form-data":
        file = files.get("file")
        if file is None:
            raise ValidationError.single("file", "Send the CSV file in the multipart field \"file\".")
        return csv_rows(file.read())
    if mimetype == "text/csv":
        return csv_rows(body())
    return json_rows(parse_json())
