"""Staff calendar: day and week views of one practitioner's appointments."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
