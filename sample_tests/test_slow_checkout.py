"""A multi-step checkout flow, about 1 s per step, announcing each step as it happens.

The step lines are printed inside ``capsys.disabled()`` so they show in the live log even though
pytest captures test output.
"""
import time

import pytest

STEP_SECONDS = 1.0


class Checkout:
    """A fake shop back end: every call takes a moment, like a real one."""

    def __init__(self, say):
        self.say, self.cart, self.address, self.shipping, self.paid = say, {}, None, None, False

    def _step(self, text: str) -> None:
        time.sleep(STEP_SECONDS)
        self.say(text)

    def add_to_cart(self, sku: str, quantity: int, unit_price: float) -> None:
        self.cart[sku] = (quantity, unit_price)
        self._step(f"added {quantity} x {sku} to the cart")

    def enter_address(self, address: str) -> None:
        if not self.cart:
            raise ValueError("the cart is empty")
        self.address = address
        self._step(f"delivery address set: {address}")

    def choose_shipping(self, method: str, cost: float) -> None:
        self.shipping = (method, cost)
        self._step(f"shipping: {method} ({cost:.2f} EUR)")

    @property
    def total(self) -> float:
        return round(sum(q * p for q, p in self.cart.values()) + (self.shipping[1] if self.shipping else 0), 2)

    def pay(self, card: str) -> str:
        self._step(f"payment of {self.total:.2f} EUR authorised on card ending {card[-4:]}")
        self.paid = True
        return "ORD-2024-000187"


@pytest.fixture
def say(capsys):
    def say(text: str) -> None:
        with capsys.disabled():
            print(f"  checkout: {text}", flush=True)
    with capsys.disabled():
        print(flush=True)
    return say


def test_guest_checkout_flow(say):
    shop = Checkout(say)
    shop.add_to_cart("BOOK-001", 2, 12.50)
    shop.add_to_cart("PEN-014", 10, 0.99)
    shop.enter_address("12 High Street, Springfield SP1 2AB")
    shop.choose_shipping("standard", 4.90)
    order = shop.pay("4111111111111111")
    say(f"order {order} confirmed")
    assert shop.paid and order.startswith("ORD-")
    assert shop.total == 39.80


def test_empty_cart_cannot_check_out(say):
    shop = Checkout(say)
    with pytest.raises(ValueError, match="cart is empty"):
        shop.enter_address("12 High Street, Springfield SP1 2AB")
