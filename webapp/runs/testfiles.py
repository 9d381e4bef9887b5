"""Test files: the shipped samples (read-only, on disk: they ship with the code on every host) and uploads (in
the database, which every host shares: a worker writes a run's files into its run directory), listed fresh."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
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


def _samples() -> Path:
    return Path(current_app.config["SAMPLE_TESTS_DIR"])


def _sample_entry(base: Path, file: Path) -> dict:
    path = f"{SAMPLES}/{file.relative_to(base).as_posix()}"
    return {"path": path, "directory": path.rsplit("/", 1)[0], "size": file.stat().st_size, "uploaded": False}


def _upload_entry(path: str, size: int, owner: str | None) -> dict:
    # owner None: uploaded before accounts (admins manage it)
    return {"path": path, "directory": path.rsplit("/", 1)[0], "size": size, "uploaded": True, "owner": owner}


def list_files() -> list[dict]:
    """Every runnable test file, sorted by directory then name: the samples from disk, uploads from the database."""
    found = []
    base = _samples()
    if base.is_dir():
        for directory, dirs, files in os.walk(base):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            found += [_sample_entry(base, Path(directory) / f) for f in files if _TEST_NAME.match(f)]
    rows = db.session.execute(select(UploadRow.path, UploadRow.size, UploadRow.owner)).all()
    found += [_upload_entry(*row) for row in rows]
    return sorted(found, key=lambda e: (e["directory"], e["path"]))


def grouped() -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for entry in list_files():
        groups.setdefault(entry["directory"], []).append(entry)
    return groups


def directories() -> list[str]:
    """Directories an upload may go into (samples are read-only): those that hold an upload."""
    paths = db.session.scalars(select(UploadRow.path))
    return sorted({p.split("/", 2)[1] for p in paths if p.count("/") == 2})


def _named_test(path: str) -> bool:
    return isinstance(path, str) and "\\" not in path and "\0" not in path \
        and bool(_TEST_NAME.match(path.rsplit("/", 1)[-1])) and ".." not in path.split("/")


def _sample(path: str) -> Path | None:
    """The shipped sample behind ``sample_tests/…``, or None (never outside its directory)."""
    prefix, _, rest = path.partition("/")
    if prefix != SAMPLES or not rest:
        return None
    base = _samples().resolve()
    file = (base / rest).resolve()
    return file if base in file.parents and file.is_file() else None


def _upload(path: str) -> UploadRow | None:
    return db.session.get(UploadRow, path) if path.startswith(UPLOADS + "/") else None


def exists(path: str) -> bool:
    if not _named_test(path):
        return False
    if path.startswith(SAMPLES + "/"):
        return _sample(path) is not None
    return db.session.scalar(select(UploadRow.path).where(UploadRow.path == path)) is not None


def materialise(paths: list[str], run_dir: Path) -> list[str]:
    """Write the files into the run's directory under their API paths (uploads from the database, checked
    against their SHA-256); the paths that are gone. Nothing is read from another host's disk."""
    missing = []
    with db.new_session() as session:  # its own, closed at once: no transaction stays open while pytest runs
        for path in paths:
            sample = _sample(path) if _named_test(path) else None
            row = session.get(UploadRow, path) if sample is None and _named_test(path) \
                and path.startswith(UPLOADS + "/") else None
            if sample is None and (row is None or hashlib.sha256(row.content).hexdigest() != row.sha256):
                missing.append(path)
                continue
            target = run_dir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if sample is not None:
                shutil.copyfile(sample, target)
            else:
                target.write_bytes(row.content)
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
    path = f"{UPLOADS}/{folder}/{name}"
    row = db.session.get(UploadRow, path)
    if row is not None:
        if not overwrite:
            raise Conflict("file_exists", f"{path} already exists; send overwrite=true to replace it.",
                           {"file": ["A file with this name already exists in this directory."]})
        _check_owner(path, actor, "replace")
    else:  # a new file is its uploader's
        row = UploadRow(path=path, owner=actor.username)
    content = text.encode("utf-8")
    row.content, row.size, row.sha256 = content, len(content), hashlib.sha256(content).hexdigest()
    row.uploaded_at = utcnow()
    audit.record("testfile.replace" if row in db.session else "testfile.upload", f"testfile:{path}", size=len(data))
    db.session.add(row)
    db.session.commit()  # one transaction: readers on every host see the whole old file or the whole new one
    return _upload_entry(path, row.size, row.owner)


def delete(path: str, *, actor: Principal) -> None:
    if not _named_test(path):
        raise NotFound("test file")
    if _sample(path) is not None:
        raise ReadOnly("Shipped sample tests are read-only; only uploaded files can be deleted.")
    row = _upload(path)
    if row is None:
        raise NotFound("test file")
    _check_owner(path, actor, "delete")
    db.session.execute(sql_delete(UploadRow).where(UploadRow.path == path))
    audit.record("testfile.delete", f"testfile:{path}")
    db.session.commit()
