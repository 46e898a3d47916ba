"""Pages through the real app and database: language, error pages, health, static files, headers."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from patient_portal.app import create_app
from patient_portal.settings import Secret, Settings
from tests.support.web import post_form


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def test_home_page_is_japanese_by_default(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="ja">' in response.text
    assert "スマホから、かかりつけの先生へ" in response.text
    assert "See your doctor" not in response.text


def test_browser_language_is_used_until_the_patient_chooses(client: TestClient) -> None:
    english = client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text
    assert "See your doctor, from your phone" in english.text


def test_language_switch_remembers_the_choice(client: TestClient) -> None:
    switched = post_form(client, "/language", {"locale": "en", "next": "/"}, follow_redirects=False)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/"
    cookie = switched.headers["set-cookie"]
    assert "tsunagu_lang=en" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie.replace("samesite", "SameSite")
    page = client.get("/")
    assert '<html lang="en">' in page.text
    back = post_form(client, "/language", {"locale": "ja", "next": "/"})
    assert '<html lang="ja">' in back.text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "x"])
def test_language_switch_never_redirects_off_site(client: TestClient, target: str) -> None:
    response = post_form(
        client, "/language", {"locale": "en", "next": target}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_unknown_language_is_ignored(client: TestClient) -> None:
    response = post_form(client, "/language", {"locale": "xx"}, follow_redirects=False)
    assert response.status_code == 303
    assert "tsunagu_lang" not in response.headers.get("set-cookie", "")


def test_not_found_page_in_both_languages(client: TestClient) -> None:
    japanese = client.get("/no-such-page")
    assert japanese.status_code == 404
    assert "ページが見つかりません" in japanese.text
    client.cookies.set("tsunagu_lang", "en")
    english = client.get("/no-such-page")
    assert english.status_code == 404
    assert "Page not found" in english.text


def test_an_unexpected_error_shows_a_friendly_page_and_logs_no_message(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: Request) -> None:
        # As in real code, the data comes from a variable, not from the source line.
        record = {"name": "見本 太郎", "phone": "090-0000-0001"}
        raise ValueError(f"could not save {record}")

    app.router.routes.insert(0, Route("/broken", broken))
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as client:
        japanese = client.get("/broken")
        english = client.get("/broken", headers={"Accept-Language": "en"})
    assert japanese.status_code == 500
    assert "エラーが発生しました" in japanese.text
    assert "Something went wrong" in english.text
    assert "content-security-policy" in japanese.headers
    logged = caplog.text
    assert "ValueError" in logged
    assert "見本" not in logged
    assert "090-0000-0001" not in logged


def test_forbidden_page(app: Starlette) -> None:
    from starlette.exceptions import HTTPException

    async def staff_only(request: Request) -> None:
        raise HTTPException(403)

    app.router.routes.insert(0, Route("/staff-only", staff_only))
    with TestClient(app) as client:
        response = client.get("/staff-only")
    assert response.status_code == 403
    assert "このページは表示できません" in response.text


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_readiness_reports_an_unreachable_redis(settings: Settings) -> None:
    unreachable = replace(settings, redis_url=Secret("redis://127.0.0.1:1/0"))
    with TestClient(create_app(unreachable)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "unavailable"}


def test_readiness_reports_a_reachable_redis(settings: Settings, redis_url: str) -> None:
    with TestClient(create_app(replace(settings, redis_url=Secret(redis_url)))) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def test_static_files_are_cache_busted(client: TestClient) -> None:
    page = client.get("/")
    match = re.search(r'href="(/static/css/app\.css\?v=([0-9a-f]{12}))"', page.text)
    assert match
    current = client.get(match.group(1))
    assert current.status_code == 200
    assert "immutable" in current.headers["cache-control"]
    assert "min-height: var(--tap)" in current.text
    stale = client.get("/static/css/app.css?v=000000000000")
    assert stale.headers["cache-control"] == "no-cache"
    assert client.get("/static/css/missing.css").status_code == 404


def test_every_page_carries_the_security_headers(app: Starlette, client: TestClient) -> None:
    paths = [
        route.path
        for route in app.routes
        if isinstance(route, Route) and "{" not in route.path and "GET" in (route.methods or ())
    ]
    assert "/" in paths
    for path in [*paths, "/no-such-page", "/api/v1/no-such-endpoint"]:
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert "camera=()" in headers["permissions-policy"]


def test_pages_have_no_inline_scripts_or_styles(client: TestClient) -> None:
    for path in ("/", "/no-such-page"):
        html = client.get(path).text
        assert re.search(r"<script(?![^>]*\bsrc=)", html) is None
        assert "<style" not in html
        assert " style=" not in html
        assert re.search(r" on[a-z]+=", html) is None
        assert 'name="viewport"' in html


def test_hsts_only_over_tls(app: Starlette) -> None:
    with TestClient(app, base_url="https://clinic.example.jp") as tls:
        assert "max-age=" in tls.get("/").headers["strict-transport-security"]
    with TestClient(app, base_url="http://127.0.0.1") as plain:
        assert "strict-transport-security" not in plain.get("/").headers


def test_a_page_that_needs_the_camera_opens_it_for_itself_only(app: Starlette) -> None:
    from starlette.responses import PlainTextResponse

    async def consult(request: Request) -> PlainTextResponse:
        return PlainTextResponse(
            "video", headers={"Permissions-Policy": "camera=(self), microphone=(self)"}
        )

    app.router.routes.insert(0, Route("/consult-test", consult))
    with TestClient(app) as client:
        assert client.get("/consult-test").headers["permissions-policy"] == (
            "camera=(self), microphone=(self)"
        )
        assert "camera=()" in client.get("/").headers["permissions-policy"]
