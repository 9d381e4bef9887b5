"""The rules of events, without Flask, SQL or Redis: input checks, the status machine, the log line."""
from __future__ import annotations

import itertools

import pytest

from webapp.domain.errors import ValidationError
from webapp.domain.events import (DESCRIPTION_MAX, USER_ID_MAX, EventStatus, InvalidTransition, check_new,
                                  check_transition, notification_line)

P, D, F = EventStatus.PENDING, EventStatus.PROCESSED, EventStatus.FAILED


def test_limits_are_the_documented_ones():
    assert (USER_ID_MAX, DESCRIPTION_MAX) == (128, 2000)


@pytest.mark.parametrize("user_id, description", [
    ("u", "d"),
    ("u" * 128, "d" * 2000),
    ("alice@example.com", "Line one\nline two — ünïcödé ✓"),
])
def test_check_new_accepts_text_within_the_limits_unchanged(user_id, description):
    assert check_new({"user_id": user_id, "description": description, "ignored": 1}) == {
        "user_id": user_id, "description": description}


@pytest.mark.parametrize("data, fields", [
    ({}, {"user_id", "description"}),
    ({"user_id": "", "description": ""}, {"user_id", "description"}),
    ({"user_id": "   ", "description": "ok"}, {"user_id"}),
    ({"user_id": None, "description": "ok"}, {"user_id"}),
    ({"user_id": 7, "description": "ok"}, {"user_id"}),
    ({"user_id": ["a"], "description": "ok"}, {"user_id"}),
    ({"user_id": "u" * 129, "description": "ok"}, {"user_id"}),
    ({"user_id": "ok", "description": "d" * 2001}, {"description"}),
    ({"user_id": "ok", "description": {"text": "x"}}, {"description"}),
    ({"user_id": "ok", "description": True}, {"description"}),
    ({"user_id": "u" * 129, "description": 3}, {"user_id", "description"}),  # every error at once
])
def test_check_new_refuses_each_bad_field_and_reports_them_together(data, fields):
    with pytest.raises(ValidationError) as caught:
        check_new(data)
    assert set(caught.value.fields) == fields
    assert all(caught.value.fields[f] and all(isinstance(m, str) and m for m in caught.value.fields[f])
               for f in fields)


def test_too_long_messages_name_the_limit():
    with pytest.raises(ValidationError) as caught:
        check_new({"user_id": "u" * 129, "description": "d" * 2001})
    assert "128" in caught.value.fields["user_id"][0]
    assert "2000" in caught.value.fields["description"][0]


@pytest.mark.parametrize("data", [None, [], "user", 3])
def test_check_new_refuses_a_body_that_is_not_an_object(data):
    with pytest.raises(ValidationError):
        check_new(data)


# Every from → to pair. Moving to the status it already has changes nothing and is allowed (so a PUT of the
# event as read back is accepted); the only moves are pending → processed | failed and failed → pending.
ALLOWED = {(P, D), (P, F), (F, P), (P, P), (D, D), (F, F)}
PAIRS = list(itertools.product(EventStatus, EventStatus))


def test_the_table_covers_every_pair():
    assert len(PAIRS) == 9 and ALLOWED < set(PAIRS)


@pytest.mark.parametrize("current, wanted", PAIRS, ids=[f"{a.value}->{b.value}" for a, b in PAIRS])
def test_check_transition_every_pair(current, wanted):
    if (current, wanted) in ALLOWED:
        assert check_transition(current, wanted.value) is wanted
        assert check_transition(current, wanted) is wanted
    else:
        with pytest.raises(InvalidTransition) as caught:
            check_transition(current, wanted.value)
        assert current.value in str(caught.value) and wanted.value in str(caught.value)


@pytest.mark.parametrize("wanted", ["done", "PENDING", "", None, 1, ["pending"]])
def test_an_unknown_status_is_a_validation_error_not_a_transition(wanted):
    with pytest.raises(ValidationError) as caught:
        check_transition(P, wanted)
    assert set(caught.value.fields) == {"status"}


def test_a_processed_event_can_never_move_again():
    for wanted in (P, F):
        with pytest.raises(InvalidTransition):
            check_transition(D, wanted.value)


def test_notification_line_is_exactly_the_documented_sentence():
    event_id = "0b6f8f55-6ad4-4f3f-9a47-3f3c9f0b8a11"
    assert notification_line(event_id, "alice", "Run #3 ended success.") == (
        "Event 0b6f8f55-6ad4-4f3f-9a47-3f3c9f0b8a11 has been sent to alice: Run #3 ended success.")


def test_notification_line_stays_one_line():
    line = notification_line("id", "bob", "first\nsecond\r\nthird")
    assert "\n" not in line and "\r" not in line
    assert line == "Event id has been sent to bob: first\\nsecond\\r\\nthird"


def test_notification_line_keeps_unicode_and_colons():
    assert notification_line("e", "dana", "ü: ✓ — 100%") == "Event e has been sent to dana: ü: ✓ — 100%"
