"""Probes for load balancers: ``/healthz`` (the process answers) and ``/readyz`` (it can work)."""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from patient_portal import db

logger = logging.getLogger(__name__)
CHECK_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """503 unless the database (and Redis, when configured) answer within a short timeout."""
    checks: dict[str, str] = {}
    try:
        await db.ping(CHECK_TIMEOUT)
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready"; the type goes to the log
        logger.warning("readiness: database check failed (%s)", type(error).__name__)
        checks["database"] = "unavailable"
    redis = request.app.state.redis
    if redis is not None:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await redis.ping()
            checks["redis"] = "ok"
        except Exception as error:
            logger.warning("readiness: redis check failed (%s)", type(error).__name__)
            checks["redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
