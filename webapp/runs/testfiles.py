"""Test files: the shipped samples (read-only) and uploads under DATA_DIR, listed fresh on every call."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from sqlalchemy import delete as sql_delete
from sqlalchemy import select

from ..audit import services as audit
from ..domain.accounts import Principal
from ..domain.errors import Conflict, Forbidden, NotFound, ReadOnly, ValidationError
from ..domain.testfiles import check_upload
from ..db import utcnow
from ..extensions import db
from ..models import UploadRow

_TEST_NAME = re.compile(r"^(test_[A-Za-z0-9_.-]*\.py|[A-Za-z0-9_.-]*_test\.py)$")
SAMPLES, UPLOADS = "sample_tests", "uploads"


@dataclass(frozen=True)
class Root:
    prefix: str
    path: Path
    read_only: bool


def roots() -> list[Root]:
    config = current_app.config
    return [Root(SAMPLES, Path(config["SAMPLE_TESTS_DIR"]), True), Root(UPLOADS, Path(config["UPLOADS_DIR"]), False)]


def _entry(root: Root, file: Path) -> dict:
    path = f"{root.prefix}/{file.relative_to(root.path).as_posix()}"
    return {"path": path, "directory": path.rsplit("/", 1)[0], "size": file.stat().st_size,
            "uploaded": not root.read_only}


def list_files() -> list[dict]:
    """Every runnable test file, sorted by directory then name (read from disk now, not cached)."""
    found = []
    for root in roots():
        if not root.path.is_dir():
            continue
        for directory, dirs, files in os.walk(root.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            found += [_entry(root, Path(directory) / f) for f in files if _TEST_NAME.match(f)]
    owners = dict(db.session.execute(select(UploadRow.path, UploadRow.owner)).all())
    for entry in found:
        if entry["uploaded"]:
            entry["owner"] = owners.get(entry["path"])  # None: uploaded before accounts (admins manage it)
    return sorted(found, key=lambda e: (e["directory"], e["path"]))


def grouped() -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for entry in list_files():
        groups.setdefault(entry["directory"], []).append(entry)
    return groups


def directories() -> list[str]:
    """Directories an upload may go into (samples are read-only)."""
    base = Path(current_app.config["UPLOADS_DIR"])
    return sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []


def resolve(path: str) -> tuple[Root, Path] | None:
    """The file behind an API path like ``sample_tests/test_x.py``, or None (never outside its root)."""
    if not isinstance(path, str) or "\\" in path or "\0" in path or not _TEST_NAME.match(path.rsplit("/", 1)[-1]):
        return None
    prefix, _, rest = path.partition("/")
    for root in roots():
        if root.prefix == prefix and rest:
            file = (root.path / rest).resolve()
            if root.path.resolve() in file.parents and file.is_file():
                return root, file
    return None


def exists(path: str) -> bool:
    return resolve(path) is not None


def materialise(paths: list[str], run_dir: Path) -> list[str]:
    """Copy the files into the run's directory under their API paths; the paths that are gone."""
    missing = []
    for path in paths:
        found = resolve(path)
        if found is None:
            missing.append(path)
            continue
        target = run_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found[1], target)
    return missing


def _upload_directory(directory: str) -> str:
    """``smoke`` and ``uploads/smoke`` both mean the upload directory ``smoke``."""
    directory = (directory or "").strip()
    if directory == SAMPLES or directory.startswith(SAMPLES + "/"):
        raise ValidationError.single("directory", "The sample directory is read-only: upload into a directory "
                                                  "of your own (a new name creates it).")
    directory = directory[len(UPLOADS) + 1:] if directory.startswith(UPLOADS + "/") else directory
    if directory == "__pycache__":  # Python's own cache directory: never listed, so never offered
        raise ValidationError.single("directory", "__pycache__ is reserved by Python: choose another name.")
    return directory


def owner(path: str) -> str | None:
    """Who uploaded ``uploads/…`` (None: nobody recorded, e.g. a file from before accounts)."""
    row = db.session.get(UploadRow, path)
    return row.owner if row else None


def _check_owner(path: str, actor: Principal, verb: str) -> None:
    """Only the uploader (or an admin) may replace or delete an upload."""
    if actor.is_admin:
        return
    who = owner(path)
    if who != actor.username:
        raise Forbidden(f"Only {who or 'an admin'} may {verb} {path}: it is not one of your uploads.")


def upload(filename: str, directory: str, data: bytes, overwrite: bool = False, *, actor: Principal) -> dict:
    name, folder, text = check_upload(filename, _upload_directory(directory), data)
    root = roots()[1]
    target_dir = root.path / folder
    target = target_dir / name
    path = f"{UPLOADS}/{folder}/{name}"
    if target.exists():
        if not overwrite:
            raise Conflict("file_exists", f"{path} already exists; send overwrite=true to replace it.",
                           {"file": ["A file with this name already exists in this directory."]})
        _check_owner(path, actor, "replace")
    row = db.session.get(UploadRow, path) or UploadRow(path=path)
    if not target.exists():  # a new file (even where one vanished from disk) is its uploader's
        row.owner = actor.username
    row.uploaded_at = utcnow()
    db.session.add(row)
    audit.record("testfile.replace" if target.exists() else "testfile.upload", f"testfile:{path}", size=len(data))
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=target_dir, delete=False, suffix=".part") as tmp:
        tmp.write(text)
    os.replace(tmp.name, target)  # readers never see half a file
    db.session.commit()
    return {**_entry(root, target), "owner": row.owner}


def delete(path: str, *, actor: Principal) -> None:
    found = resolve(path)
    if found is None:
        raise NotFound("test file")
    root, file = found
    if root.read_only:
        raise ReadOnly("Shipped sample tests are read-only; only uploaded files can be deleted.")
    path = f"{root.prefix}/{file.relative_to(root.path).as_posix()}"
    _check_owner(path, actor, "delete")
    db.session.execute(sql_delete(UploadRow).where(UploadRow.path == path))
    audit.record("testfile.delete", f"testfile:{path}")
    db.session.commit()
    file.unlink()
    if file.parent != root.path and not any(file.parent.iterdir()):
        file.parent.rmdir()
