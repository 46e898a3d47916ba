"""Entry point for ASGI servers started with several workers (``uvicorn --factory``)."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from patient_portal.app import create_app
from patient_portal.settings import load_settings


def app_from_environment() -> Starlette:
    """Build the portal from ``TSUNAGU_`` variables; each worker process calls this once."""
    return create_app(load_settings(os.environ))
