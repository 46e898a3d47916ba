"""Staff pages of questionnaires: authoring (drafts, validation, preview, test cases, publish,
import/export) and the doctor's view of a patient's answers."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
