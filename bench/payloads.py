"""The two session payloads every variant carries, and the secret they are signed with."""

from __future__ import annotations

import json
from typing import Any

SECRET = "bench-secret-0123456789abcdef-0123456789"

SMALL: dict[str, Any] = {"user_id": 42, "name": "alice", "cart": [1, 2, 3]}


def _large() -> dict[str, Any]:
    """About 2 KB of compact JSON: a user with a cart of products, as a shop keeps it."""
    items = [
        {"sku": f"SKU-{i:05d}", "title": f"Product number {i}", "qty": i % 4 + 1, "price": 9.5 + i}
        for i in range(28)
    ]
    return {**SMALL, "email": "alice@example.com", "items": items, "theme": "dark"}


LARGE: dict[str, Any] = _large()

PAYLOADS: dict[str, dict[str, Any]] = {"small": SMALL, "large": LARGE}


def json_size(payload: dict[str, Any]) -> int:
    """Bytes of the payload as compact JSON."""
    return len(json.dumps(payload, separators=(",", ":")).encode())
