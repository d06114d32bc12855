"""What the sample shop sells, and how a cart's contents are priced."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    code: str
    name: str
    price_cents: int


PRODUCTS = {
    product.code: product
    for product in (
        Product("tea", "Green tea, 100 g", 450),
        Product("mug", "Enamel mug", 1200),
        Product("honey", "Wildflower honey", 800),
    )
}


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.product.price_cents * self.quantity


def cart_lines(quantities: Mapping[str, int]) -> list[CartLine]:
    """Priced lines for a cart's ``{code: quantity}``, unknown codes skipped."""
    return [
        CartLine(PRODUCTS[code], quantity)
        for code, quantity in quantities.items()
        if code in PRODUCTS and quantity > 0
    ]


def format_price(cents: int) -> str:
    return f"€{cents // 100}.{cents % 100:02d}"
