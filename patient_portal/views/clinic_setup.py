"""Staff pages where the clinic administrator sets up the clinic: profile, practitioners,
menus, weekly hours and date exceptions."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
