"""The shopping cart, a named session on a server-side backend."""

from __future__ import annotations

from sample_app.base import PageHandler
from sample_app.catalogue import PRODUCTS, cart_lines


class CartHandler(PageHandler):
    def get(self) -> None:
        lines = cart_lines(self.cart.get("lines", {}))
        self.render(
            "cart.html",
            products=PRODUCTS.values(),
            lines=lines,
            total_cents=sum(line.total_cents for line in lines),
            cart_backend=self.cart_backend,
        )


class AddToCartHandler(PageHandler):
    def post(self) -> None:
        self.verify_form()
        product = PRODUCTS.get(self.request.POST.get("product", ""))
        if product is None:
            self.abort(400, detail="Unknown product.")
            return
        # setdefault returns the stored dict; changing it in place is tracked.
        quantities = self.cart.setdefault("lines", {})
        quantities[product.code] = quantities.get(product.code, 0) + 1
        self.session.add_flash(f"Added {product.name} to your cart.", "success")
        self.redirect_to("cart", _abort=True)


class EmptyCartHandler(PageHandler):
    def post(self) -> None:
        self.verify_form()
        # An emptied session is deleted from its backend and its cookie expired.
        self.cart.clear()
        self.session.add_flash("Your cart is empty.", "info")
        self.redirect_to("cart", _abort=True)
