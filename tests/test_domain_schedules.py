"""The schedule rules in plain Python: cron validation, next due times (UTC), the skip rule, no burst."""
from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain.errors import ValidationError
from webapp.domain.schedules import (check_cron, check_enabled, check_name, check_pool, check_priority, fire,
                                     next_due)

UTC = timezone.utc


@pytest.mark.parametrize("text", ["* * * * *", "*/15 * * * *", "0 2 * * 1-5", "  30  4 1 * *  ", "0 0 * * sun"])
def test_valid_cron_expressions_are_kept_with_single_spaces(text):
    assert check_cron(text) == " ".join(text.split())


@pytest.mark.parametrize("text, words", [
    ("* * * *", "exactly 5 fields"), ("* * * * * *", "exactly 5 fields"), ("@daily", "exactly 5 fields"),
    ("61 * * * *", "not a valid"), ("* 25 * * *", "not a valid"), ("a b c d e", "not a valid"),
    ("0 0 30 2 *", "never due"), ("", "5 fields"), (None, "5 fields"), (5, "5 fields"), ("*" * 200, "At most"),
])
def test_invalid_cron_is_refused_under_cron_with_a_clear_message(text, words):
    with pytest.raises(ValidationError) as exc:
        check_cron(text)
    assert list(exc.value.fields) == ["cron"] and words in exc.value.fields["cron"][0]


def test_other_fields():
    assert check_name("  nightly ") == "nightly"
    assert check_priority("high") == "high" and check_enabled(False) is False and check_pool(None) is None
    assert check_pool("gpu") == "gpu"
    for check, value, field in ((check_name, " ", "name"), (check_name, "x" * 129, "name"),
                                (check_priority, "urgent", "priority"), (check_enabled, "yes", "enabled"),
                                (check_pool, "GPU!", "pool")):
        with pytest.raises(ValidationError) as exc:
            check(value)
        assert list(exc.value.fields) == [field]


def test_next_due_is_the_first_due_time_strictly_after_in_utc():
    assert next_due("* * * * *", datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert next_due("* * * * *", datetime(2026, 1, 1, 0, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    # read in UTC even when "after" is given in another zone
    plus2 = timezone(timedelta(hours=2))
    assert next_due("0 2 * * *", datetime(2026, 1, 1, 3, 0, tzinfo=plus2)) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    assert next_due("0 2 * * *", datetime(2026, 1, 1, 5, 0, tzinfo=plus2)) == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    assert next_due("0 2 * * *", datetime(2026, 1, 1, 1, 0)) == datetime(2026, 1, 1, 2, 0, tzinfo=UTC)  # naive: UTC


def test_a_due_schedule_starts_a_run_unless_its_previous_run_still_waits():
    due, now = datetime(2026, 1, 1, 2, 0, tzinfo=UTC), datetime(2026, 1, 1, 2, 0, 1, tzinfo=UTC)
    go = fire("0 2 * * *", due, now, previous_waits=False)
    assert go.start and go.due == due and go.next_due_at == datetime(2026, 1, 2, 2, 0, tzinfo=UTC)
    skip = fire("0 2 * * *", due, now, previous_waits=True)
    assert not skip.start and skip.next_due_at == go.next_due_at


def test_after_downtime_of_many_due_times_one_run_and_the_next_due_time_is_after_now():
    due = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    now = due + timedelta(hours=5, seconds=20)  # 300 due times of a per-minute cron were missed
    result = fire("* * * * *", due, now, previous_waits=False)
    assert result.start and result.due == due
    assert result.next_due_at == datetime(2026, 1, 1, 5, 1, tzinfo=UTC) and result.next_due_at > now
