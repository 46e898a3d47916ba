"""The JSON API base: problem+json for every kind of bad request, and an honest OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from patient_portal.app import create_app
from patient_portal.settings import Settings

PROBLEM = "application/problem+json"


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def assert_problem(response: object, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"urn:tsunagu:problem:{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body  # type: ignore[no-any-return]


def test_health(client: TestClient) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["version"]


def test_choosing_the_language_through_the_api(client: TestClient) -> None:
    response = client.put("/api/v1/preferences/language", json={"locale": "en"})
    assert response.status_code == 200
    assert response.json() == {"locale": "en"}
    assert "tsunagu_lang=en" in response.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/").text


def test_malformed_json_is_a_400_problem(client: TestClient) -> None:
    response = client.put(
        "/api/v1/preferences/language",
        content=b'{"locale": "en"',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 400, "malformed-json")
    assert body["title"] == "JSON の形式が正しくありません"
    assert body["i18n"] == {  # the other language, for clients that show both
        "en": {
            "title": "The body is not valid JSON",
            "detail": "The body could not be read as JSON; check its syntax",
        }
    }


def test_wrong_content_type_is_a_415_problem(client: TestClient) -> None:
    response = client.put("/api/v1/preferences/language", data={"locale": "en"})
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in str(body["detail"])


def test_invalid_fields_are_a_422_problem_with_one_error_per_field(client: TestClient) -> None:
    response = client.put(
        "/api/v1/preferences/language",
        json={"locale": "fr", "colour": "blue"},
        headers={"Accept-Language": "en"},
    )
    body = assert_problem(response, 422, "validation")
    errors = {e["field"]: e for e in body["errors"]}  # type: ignore[attr-defined]
    assert errors["body.locale"]["code"] == "literal_error"
    assert errors["body.locale"]["message"] == "Choose one of: 'ja' or 'en'"
    assert errors["body.colour"]["code"] == "extra_forbidden"
    japanese = client.put("/api/v1/preferences/language", json={})
    assert_problem(japanese, 422, "validation")
    assert japanese.json()["errors"] == [
        {"field": "body.locale", "code": "missing", "message": "入力してください"}
    ]


@pytest.mark.parametrize("payload", [b"[]", b'"ja"', b"null", b"42", b"1e999999"])
def test_a_body_that_is_not_an_object_is_a_422(client: TestClient, payload: bytes) -> None:
    response = client.put(
        "/api/v1/preferences/language",
        content=payload,
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "validation")


def test_an_oversized_body_is_a_413(client: TestClient) -> None:
    response = client.put(
        "/api/v1/preferences/language",
        content=b'{"locale": "' + b"x" * 1_100_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


def test_deeply_nested_json_is_a_4xx_not_a_crash(client: TestClient) -> None:
    response = client.put(
        "/api/v1/preferences/language",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM


def test_unknown_endpoint_and_wrong_method_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/no-such-thing"), 404, "not-found")
    wrong_method = client.delete("/api/v1/preferences/language")
    assert_problem(wrong_method, 405, "method-not-allowed")
    assert wrong_method.headers["allow"] == "PUT"


def test_openapi_document_lists_every_api_route(app: Starlette, client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    api_paths = {
        route.path
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/api/")
    }
    assert api_paths
    assert api_paths == set(document["paths"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"], (path, method)
            assert operation["summary"], (path, method)
            assert "default" in operation["responses"], (path, method)
    schemas = document["components"]["schemas"]
    assert {"Problem", "Health", "LanguageChoice"} <= set(schemas)


def test_a_nul_character_is_a_422_not_a_database_error(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/staff/signin",
        json={"login_id": "a\u0000b", "password": "x", "code": "123456"},
    )
    body = assert_problem(response, 422, "validation")
    assert "NUL" in str(body["detail"])
