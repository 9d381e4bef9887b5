"""Pools and priorities in plain Python (``webapp.domain.pools``): labels, priority, who could use an
environment, and the one ordering rule (high or aged first, then creation order)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from webapp.domain.errors import ValidationError
from webapp.domain.pools import (MAX_LABELS, aged_before, can_use, check_label, check_labels, check_priority,
                                 counts_as_high, order_key)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_labels_are_checked_split_and_deduplicated_in_order():
    assert check_labels(["linux", "gpu-2", "big_mem"]) == ["linux", "gpu-2", "big_mem"]
    assert check_labels(" linux, gpu  linux,,") == ["linux", "gpu"]
    assert check_labels([]) == [] and check_labels("") == []
    assert check_labels([f"l{i}" for i in range(MAX_LABELS)]) == [f"l{i}" for i in range(MAX_LABELS)]
    assert check_label("x" * 32) == "x" * 32


@pytest.mark.parametrize("value", [["Linux"], ["a b"], ["x" * 33], [""], [3], "a,B", {"a": 1}, None,
                                   [f"l{i}" for i in range(MAX_LABELS + 1)]])
def test_bad_labels_are_refused_on_the_labels_field(value):
    with pytest.raises(ValidationError) as exc:
        check_labels(value)
    assert list(exc.value.fields) == ["labels"]


@pytest.mark.parametrize("value", ["", "GPU", "a/b", None, 1, "x" * 33, "é"])
def test_a_bad_pool_label_is_refused_on_its_field(value):
    with pytest.raises(ValidationError) as exc:
        check_label(value)
    assert list(exc.value.fields) == ["pool"]


def test_priority_defaults_to_normal_and_knows_two_values():
    assert check_priority(None) == "normal" and check_priority("high") == "high"
    for bad in ("urgent", "HIGH", 1, ""):
        with pytest.raises(ValidationError) as exc:
            check_priority(bad)
        assert list(exc.value.fields) == ["priority"]


def test_who_could_use_an_environment():
    assert can_use(3, None, 3, []) and not can_use(4, None, 3, ["linux"])
    assert can_use(None, "linux", 3, ["gpu", "linux"]) and not can_use(None, "linux", 3, ["gpu"])


def test_a_normal_run_counts_as_high_once_it_waited_longer_than_the_aging_time():
    assert aged_before(NOW, 30) == NOW - timedelta(minutes=30)
    assert counts_as_high("high", NOW, NOW, 30)
    assert not counts_as_high("normal", NOW - timedelta(minutes=29), NOW, 30)
    assert counts_as_high("normal", NOW - timedelta(minutes=31), NOW, 30)


def test_order_high_first_then_creation_order_and_aged_normal_runs_beat_newer_high_ones():
    runs = [(1, "normal", NOW - timedelta(minutes=5)), (2, "high", NOW - timedelta(minutes=4)),
            (3, "normal", NOW - timedelta(minutes=3)), (4, "high", NOW - timedelta(minutes=2))]
    assert [r[0] for r in sorted(runs, key=lambda r: order_key(*r, NOW, 30))] == [2, 4, 1, 3]
    aged = [(1, "normal", NOW - timedelta(minutes=45))] + runs[1:]
    assert [r[0] for r in sorted(aged, key=lambda r: order_key(*r, NOW, 30))] == [1, 2, 4, 3]
