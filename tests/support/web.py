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


def post_form(client: Any, path: str, data: dict[str, str], *, page: str = "/", **kwargs: Any) -> Any:
    """POST ``data`` to ``path`` with the token from ``page``, as a form would."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page)}, **kwargs)
