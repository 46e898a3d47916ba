"""The patient's questionnaire: one section per screen, saved as a draft as they go."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
