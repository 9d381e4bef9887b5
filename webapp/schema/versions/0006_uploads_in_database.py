"""Uploaded test files live in the database (content, size, SHA-256): hosts share nothing but it and Redis.

Every test file under ``DATA_DIR/uploads`` (the DATA_DIR the app passes in ``config.attributes["data_dir"]``)
is imported, with its owner's row if there is one, else no owner (an admin's, as before). A row whose
file had vanished from disk is dropped: it listed nothing and could run nothing. The files stay on disk.
Downgrading writes every upload back under ``DATA_DIR/uploads``.

Revision ID: 0006_uploads_in_database
Revises: 0005_runs_finished_index
Create Date: 2026-12-01
"""
import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from alembic import op
import sqlalchemy as sa

revision = "0006_uploads_in_database"
down_revision = "0005_runs_finished_index"
branch_labels = None
depends_on = None

# What webapp.runs.testfiles listed from disk until this revision: test modules, not in hidden or cache dirs.
TEST_NAME = re.compile(r"^(test_[A-Za-z0-9_.-]*\.py|[A-Za-z0-9_.-]*_test\.py)$")

uploads = sa.table(
    "uploads",
    sa.column("path", sa.String), sa.column("owner", sa.String), sa.column("uploaded_at", sa.DateTime(timezone=True)),
    sa.column("content", sa.LargeBinary), sa.column("size", sa.Integer), sa.column("sha256", sa.String),
)


def _uploads_dir() -> Path | None:
    data_dir = op.get_context().config.attributes.get("data_dir")
    return Path(data_dir) / "uploads" if data_dir else None


def _files_on_disk(base: Path) -> dict[str, Path]:
    found = {}
    for directory, dirs, files in os.walk(base):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            file = Path(directory) / name
            if TEST_NAME.match(name) and file.is_file():
                found[f"uploads/{file.relative_to(base).as_posix()}"] = file
    return found


def upgrade() -> None:
    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("owner", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("content", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("sha256", sa.String(64), nullable=True))

    connection = op.get_bind()
    base = _uploads_dir()
    files = _files_on_disk(base) if base is not None and base.is_dir() else {}
    known = set(connection.scalars(sa.select(uploads.c.path)))
    for path, file in sorted(files.items()):
        content = file.read_bytes()
        values = {"content": content, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
        if path in known:
            connection.execute(uploads.update().where(uploads.c.path == path).values(**values))
        else:
            at = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc)
            connection.execute(uploads.insert().values(path=path, owner=None, uploaded_at=at, **values))
    connection.execute(uploads.delete().where(uploads.c.content.is_(None)))

    with op.batch_alter_table("uploads") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        batch.alter_column("size", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("sha256", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    base = _uploads_dir()
    connection = op.get_bind()
    if base is not None:
        for path, content in connection.execute(sa.select(uploads.c.path, uploads.c.content)):
            target = base / path.removeprefix("uploads/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    connection.execute(uploads.delete().where(uploads.c.owner.is_(None)))
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("sha256")
        batch.drop_column("size")
        batch.drop_column("content")
        batch.alter_column("owner", existing_type=sa.String(64), nullable=False)
