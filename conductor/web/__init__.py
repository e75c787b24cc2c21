"""The web dashboard: an ASGI app over the `Conductor` facade (`create_app`).

Run it with `conductor dashboard`, or mount `create_app(...)` inside your own ASGI
application (docs/dashboard.md). Templates and static assets ship inside this package.
"""

from __future__ import annotations

from conductor.web.app import create_app

__all__ = ["create_app"]
