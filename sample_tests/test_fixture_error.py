"""A fixture that cannot connect to its database: the tests using it end in "error", not "failed"."""
import pytest


class InventoryDatabase:
    def __init__(self, dsn: str):
        raise ConnectionError(f"could not connect to {dsn}: connection refused")


@pytest.fixture
def inventory():
    return InventoryDatabase("postgresql://inventory-db.test:5432/stock")


@pytest.fixture
def audit_log():
    entries = []
    yield entries
    if not entries:
        raise RuntimeError("teardown check: the test wrote nothing to the audit log")


def test_stock_level_of_a_known_sku(inventory):
    assert inventory.stock("BOOK-001") == 42


def test_reserving_stock_is_audited(audit_log):
    # passes itself, but the fixture's teardown finds the audit log empty and errors
    assert audit_log == []


def test_sku_format_needs_no_database():
    assert "BOOK-001".split("-") == ["BOOK", "001"]
