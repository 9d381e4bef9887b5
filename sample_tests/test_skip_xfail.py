"""Skipped and expected-to-fail tests, as a real suite has them."""
import sys

import pytest


def test_runs_everywhere():
    assert "checkout".upper() == "CHECKOUT"


@pytest.mark.skip(reason="payment provider sandbox is down for maintenance")
def test_refund_through_payment_provider():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.version_info >= (3, 0), reason="legacy Python 2 encoding behaviour")
def test_python2_unicode_handling():
    raise AssertionError("never runs on Python 3")


def test_skipped_at_runtime():
    pytest.skip("no test printer attached to this environment")


@pytest.mark.xfail(reason="BUG-1234: totals over 1 000 000 overflow the display", strict=False)
def test_large_total_is_formatted():
    assert f"{1_250_000.5:,.2f}" == "1250000.50"


@pytest.mark.xfail(reason="BUG-987: was flaky, seems fixed now", strict=False)
def test_fixed_bug_unexpectedly_passes():
    assert sorted([3, 1, 2]) == [1, 2, 3]
