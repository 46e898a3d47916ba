"""``/api/v1``: the endpoints of the first API version. Later features add theirs here."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from patient_portal.api.routing import Api
from patient_portal.i18n import COOKIE, COOKIE_MAX_AGE


@cache
def product_version() -> str:
    """The installed distribution's version (read once: the metadata lookup is slow)."""
    try:
        return version("tsunagu")
    except PackageNotFoundError:
        return "0+unknown"


api = Api("/api/v1", title="Tsunagu API", version=product_version())


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class LanguageChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: Literal["ja", "en"]


@api.endpoint("GET", "/health", summary="Is the API answering?", response=Health, tags=("meta",))
async def get_health(request: Request) -> Health:
    """Answers as long as the process serves requests; `/readyz` also checks the database."""
    return Health(status="ok", version=product_version())


@api.endpoint(
    "PUT",
    "/preferences/language",
    summary="Choose the language of pages and messages",
    body=LanguageChoice,
    response=LanguageChoice,
    tags=("preferences",),
)
async def put_language(request: Request, body: LanguageChoice) -> Response:
    """Remembers the choice in a cookie, exactly as the language switch on the pages does."""
    response = JSONResponse(body.model_dump())
    response.set_cookie(
        COOKIE,
        body.locale,
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response
