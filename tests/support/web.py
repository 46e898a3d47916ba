"""Helpers for driving pages like a browser: read the CSRF token a page carries, post forms."""

from __future__ import annotations

import re
from typing import Any

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_token(client: Any, path: str = "/") -> str:
    """The CSRF token of the page at ``path`` (what a browser would send back with a form)."""
    match = TOKEN.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(
    client: Any, path: str, data: dict[str, str], *, page: str = "/", **kwargs: Any
) -> Any:
    """POST ``data`` to ``path`` with the token from ``page``, as a form would."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)}, **kwargs)


def sign_in_staff(client: Any, staff: Any, clock: Any) -> Any:
    """Password, then the authenticator code of ``clock``'s time; returns the last response."""
    import pyotp

    first = post_form(
        client,
        "/staff/signin",
        {"login_id": staff.login_id, "password": staff.password},
        page="/staff/signin",
        follow_redirects=False,
    )
    assert first.headers.get("location") == "/staff/signin/code", first.text[:300]
    code = pyotp.TOTP(staff.totp_secret).at(clock.now)
    return post_form(
        client,
        "/staff/signin/code",
        {"code": code},
        page="/staff/signin/code",
        follow_redirects=False,
    )


def sign_in_patient(client: Any, phone: str, code: str) -> Any:
    post_form(client, "/signin", {"phone": phone}, page="/signin")
    return post_form(
        client,
        "/signin/code",
        {"phone": phone, "code": code},
        page="/signin",
        follow_redirects=False,
    )


class Devices:
    """Several browsers on one test client (one app lifespan): each has its own cookie jar."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._jars: dict[str, Any] = {}
        self._current: str | None = None

    def __call__(self, name: str) -> Any:
        if name != self._current:
            if self._current is not None:
                self._jars[self._current] = self._client.cookies  # the live jar
            # Assigning copies the jar into the client; its own class (httpx or httpx2).
            self._client.cookies = self._jars.get(name) or type(self._client.cookies)()
            self._current = name
        return self._client
