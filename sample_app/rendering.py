"""The Jinja2 environment of the sample's templates."""

from __future__ import annotations

from typing import Any

import jinja2

from sample_app.catalogue import format_price

environment = jinja2.Environment(
    loader=jinja2.PackageLoader("sample_app", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["price"] = format_price


def render(template_name: str, values: dict[str, Any]) -> str:
    """Render one template of ``sample_app/templates`` with ``values``."""
    return environment.get_template(template_name).render(values)
