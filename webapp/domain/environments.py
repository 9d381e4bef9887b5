"""Test environments: what an admin may change about one, in plain Python."""
from __future__ import annotations

from typing import Any, Callable

from .errors import ValidationError

NAME_MAX, DESCRIPTION_MAX = 64, 2000
EDITABLE = ("name", "description", "enabled", "labels", "variables", "secrets", "setup", "teardown")


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= NAME_MAX or not value.strip().isprintable():
        raise ValidationError.single("name", f"Name must be 1 to {NAME_MAX} printable characters.")
    return value.strip()


def check_description(value: Any) -> str:
    if not isinstance(value, str) or len(value) > DESCRIPTION_MAX:
        raise ValidationError.single("description", f"Description must be text of at most {DESCRIPTION_MAX} "
                                                    "characters.")
    return value.strip()


def check_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError.single("enabled", "Enabled must be true or false.")
    return value


def check_stage_file(value: Any, field: str, exists: Callable[[str], bool]) -> str | None:
    """``setup``/``teardown``: an available test file (as a run's files), or None for none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError.single(field, "Name a test file such as sample_tests/test_passing.py, or null.")
    if not exists(value.strip()):
        raise ValidationError.single(field, f"Not an available test file: {value.strip()}")
    return value.strip()
