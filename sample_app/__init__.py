"""A small shop that shows every feature of tipsessions on clickable pages.

Run it with ``python -m sample_app`` and open http://127.0.0.1:8080. Tests
build it with :func:`create_app`.
"""

from sample_app.app import create_app

__all__ = ["create_app"]
