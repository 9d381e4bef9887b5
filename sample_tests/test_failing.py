"""An order summary with a bug: the failing tests show pytest's assertion diffs."""


def order_summary(lines: list[tuple[str, int, float]]) -> dict:
    """Item count, distinct SKUs and total of an order; ``lines`` are (sku, quantity, unit price)."""
    return {
        "items": len(lines),  # bug: counts lines, not items
        "skus": sorted({sku for sku, _, _ in lines}),
        "total": round(sum(quantity * unit for _, quantity, unit in lines), 2),
    }


ORDER = [("BOOK-001", 2, 12.5), ("PEN-014", 10, 0.99), ("BOOK-001", 1, 12.5)]


def test_total_of_an_order():
    assert order_summary(ORDER)["total"] == 47.4


def test_summary_of_an_order():
    assert order_summary(ORDER) == {
        "items": 13,
        "skus": ["BOOK-001", "PEN-014"],
        "total": 47.4,
    }


def shipping_label(name: str, street: str, city: str, country: str) -> str:
    return "\n".join([name, street, city, country.upper()])  # bug: the carrier wants "United Kingdom"


def test_shipping_label():
    label = shipping_label("ACME Books Ltd", "12 High Street", "Springfield SP1 2AB", "United Kingdom")
    assert label == "ACME Books Ltd\n12 High Street\nSpringfield SP1 2AB\nUnited Kingdom"
