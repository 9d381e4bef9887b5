"""The holds' rules in plain Python: minutes 1..1440, a reason of 1..500 characters, an ended hold holds nothing."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain import holds
from webapp.domain.errors import ValidationError
from webapp.inputs import hold

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [(1, 1), (1440, 1440), ("30", 30), (" 7 ", 7)])
def test_minutes_accepted(value, expected):
    assert holds.check_minutes(value) == expected


@pytest.mark.parametrize("value", [0, 1441, -5, 2.0, True, None, "", "ten", "٣", [5]])
def test_minutes_refused(value):
    with pytest.raises(ValidationError) as exc:
        holds.check_minutes(value)
    assert list(exc.value.fields) == ["minutes"]


@pytest.mark.parametrize("value", [None, "", "   ", 5, "x" * 501])
def test_reason_refused(value):
    with pytest.raises(ValidationError) as exc:
        holds.check_reason(value)
    assert list(exc.value.fields) == ["reason"]


def test_reason_is_trimmed_and_500_characters_fit():
    assert holds.check_reason("  upgrade  ") == "upgrade" and holds.check_reason("y" * 500) == "y" * 500


def test_a_hold_holds_until_its_end_and_not_after():
    assert holds.active(NOW + timedelta(seconds=1), NOW)
    assert not holds.active(NOW, NOW) and not holds.active(NOW - timedelta(minutes=1), NOW)
    assert not holds.active(None, NOW)


def test_the_input_layer_reports_every_field_and_unknown_ones():
    assert hold({"minutes": 5, "reason": "r"}) == {"minutes": 5, "reason": "r"}
    with pytest.raises(ValidationError) as exc:
        hold({"minutes": 0, "reason": "", "by": "someone else"})
    assert set(exc.value.fields) == {"minutes", "reason", "by"}
    with pytest.raises(ValidationError):
        hold(["not", "an", "object"])
