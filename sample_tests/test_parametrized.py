"""A table of e-mail addresses checked by a simple validator; one case shows a known gap."""
import re

import pytest

EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def is_valid_email(address: str) -> bool:
    return bool(EMAIL.match(address))


@pytest.mark.parametrize(
    "address, valid",
    [
        pytest.param("alice@example.com", True, id="simple"),
        pytest.param("bob.smith+newsletter@mail.example.co.uk", True, id="plus-and-subdomains"),
        pytest.param("carol@localhost", False, id="no-top-level-domain"),
        pytest.param("dave@@example.com", False, id="double-at"),
        pytest.param("", False, id="empty"),
        pytest.param("eve@exa mple.com", False, id="space-in-domain"),
        pytest.param("frank..jones@example.com", False, id="consecutive-dots"),  # fails: the regex allows it
    ],
)
def test_email_validation(address, valid):
    assert is_valid_email(address) is valid


@pytest.mark.parametrize("quantity, expected", [(1, "1 item"), (2, "2 items"), (0, "no items")])
def test_item_count_wording(quantity, expected):
    wording = "no items" if quantity == 0 else f"{quantity} item{'s' if quantity != 1 else ''}"
    assert wording == expected
