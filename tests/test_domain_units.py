"""One helper names every byte limit (it was two ``_size`` functions, one saying MB and one MiB)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from webapp.domain.runs import LogCap
from webapp.domain.testfiles import MAX_UPLOAD_BYTES
from webapp.domain.units import size_text

WEBAPP = Path(__file__).resolve().parent.parent / "webapp"


@pytest.mark.parametrize("limit, shown", [(1024 * 1024, "1 MiB"), (1536 * 1024, "1.5 MiB"), (2048, "2 KiB"),
                                          (1023, "1023 bytes"), (5 * 1024 * 1024, "5 MiB")])
def test_sizes_are_named_in_1024_based_units(limit, shown):
    assert size_text(limit) == shown


def test_the_upload_limit_and_the_log_marker_use_the_one_helper(client):
    assert size_text(MAX_UPLOAD_BYTES) == "1 MiB"
    assert size_text(5 * 1024 * 1024) in LogCap(5 * 1024 * 1024).marker
    hint = client.get("/runs/new").get_data(as_text=True)
    assert f"at most {size_text(MAX_UPLOAD_BYTES)}." in hint  # the form's hint comes from the limit itself


def test_no_other_size_helper():
    defined = [f"{p.relative_to(WEBAPP)}:{n.name}" for p in WEBAPP.rglob("*.py")
               for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.FunctionDef) and n.name == "_size"]
    assert defined == []
