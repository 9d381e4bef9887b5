"""The one validation layer as plain functions: filters parsed once for pages and API, edits checked together,
and every limit a form shows read from the constant the rules use."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from webapp import inputs
from webapp.domain.errors import ImmutableFieldError, ValidationError
from webapp.domain.events import EventStatus, InvalidTransition

ROOT = Path(__file__).resolve().parent.parent


def test_filter_args_keeps_what_was_typed_for_the_pager_and_drops_blanks_and_the_page():
    args = {"actor": "alice", "action": " ", "page": "3", "since": "2026-12-01"}
    assert inputs.filter_args(args, inputs.AUDIT_FILTERS) == {"actor": "alice", "since": "2026-12-01"}


@pytest.mark.parametrize("parse, args, field", [
    (inputs.run_filters, {"state": "nope"}, "state"),
    (inputs.run_filters, {"environment_id": "0"}, "environment_id"),
    (inputs.event_filters, {"status": "done"}, "status"),
    (inputs.audit_filters, {"since": "yesterday"}, "since"),
])
def test_a_bad_filter_is_reported_on_its_field(parse, args, field):
    with pytest.raises(ValidationError) as refused:
        parse(args)
    assert list(refused.value.fields) == [field]


def test_environment_changes_are_checked_together_and_only_the_editable_fields_pass():
    assert inputs.environment_changes({"name": " QA 1 ", "enabled": False}) == {"name": "QA 1", "enabled": False}
    with pytest.raises(ValidationError) as refused:
        inputs.environment_changes({"name": "", "description": "x" * 2001, "enabled": "yes", "id": 3})
    assert set(refused.value.fields) == {"name", "description", "enabled", "id"}


def test_event_changes_refuse_read_only_fields_and_check_the_transition():
    current = {"id": "e1", "user_id": "bob", "description": "hi", "status": "pending", "source": "api",
               "link": None, "attempts": 0, "last_error": None, "created_at": "t", "processed_at": None}
    assert inputs.event_changes({"user_id": "carol"}, current) == ({"user_id": "carol"}, EventStatus.PENDING)
    assert inputs.event_changes({"status": "processed"}, current)[1] is EventStatus.PROCESSED
    with pytest.raises(ImmutableFieldError):
        inputs.event_changes({"attempts": 5}, current)
    with pytest.raises(ValidationError):
        inputs.event_changes({"status": "nope"}, current)
    with pytest.raises(InvalidTransition):
        inputs.event_changes({"status": "pending"}, {**current, "status": "processed"})


def test_run_input_reports_every_field_at_once_including_another_accounts_name():
    with pytest.raises(ValidationError) as refused:
        inputs.run({"username": "mallory", "environment_id": 0, "test_files": []}, "alice",
                   file_exists=lambda path: True, environment_enabled=lambda number: True)
    assert set(refused.value.fields) == {"username", "environment_id", "test_files"}
    with pytest.raises(ValidationError) as refused:
        inputs.run({"environment_id": 4, "test_files": ["sample_tests/test_passing.py"]}, "alice",
                   file_exists=lambda path: True, environment_enabled=lambda number: number != 4)
    assert refused.value.fields == {"environment_id": ["Environment 4 is disabled: choose another one."]}


def test_no_form_writes_a_limit_of_its_own():
    """maxlength and friends come from the domain's constants, which the rules and the OpenAPI document use."""
    literal = []
    for path in sorted(ROOT.glob("webapp/*/forms.py")) + [ROOT / "webapp" / "forms.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value in ("maxlength", "minlength", "max", "min") \
                            and isinstance(value, ast.Constant):
                        literal.append(f"{path.relative_to(ROOT)}:{node.lineno} {key.value}={value.value}")
    assert literal == []
