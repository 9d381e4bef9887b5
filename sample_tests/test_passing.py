"""Fast, passing tests of a small pricing function (defined here so the file runs on its own)."""
from decimal import ROUND_HALF_UP, Decimal

import pytest

VAT_RATE = Decimal("0.20")


def price(unit_price: str, quantity: int, discount_percent: int = 0) -> Decimal:
    """Total price including VAT, rounded to the cent; discounts apply before VAT."""
    if quantity < 1:
        raise ValueError("quantity must be at least 1")
    if not 0 <= discount_percent <= 100:
        raise ValueError("discount must be between 0 and 100 percent")
    net = Decimal(unit_price) * quantity * (100 - discount_percent) / 100
    return (net * (1 + VAT_RATE)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_single_item_includes_vat():
    assert price("10.00", 1) == Decimal("12.00")


def test_quantity_multiplies_the_unit_price():
    assert price("2.50", 4) == Decimal("12.00")


def test_rounding_is_half_up_to_the_cent():
    assert price("0.05", 1) == Decimal("0.06")


class TestDiscounts:
    def test_discount_applies_before_vat(self):
        assert price("100.00", 1, discount_percent=25) == Decimal("90.00")

    def test_full_discount_is_free(self):
        assert price("19.99", 3, discount_percent=100) == Decimal("0.00")

    def test_discount_over_100_percent_is_refused(self):
        with pytest.raises(ValueError, match="between 0 and 100"):
            price("10.00", 1, discount_percent=120)


def test_zero_quantity_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        price("10.00", 0)
