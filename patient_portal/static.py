"""Static files with cache-busting: URLs carry a content hash and are cached for a year.

``StaticAssets.url("css/app.css")`` gives ``/static/css/app.css?v=<hash>``. A request whose ``v``
matches the file's current hash is served ``immutable``; any other is served ``no-cache``, so a
stale page never pins an old file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

STATIC_DIR: Final = Path(__file__).parent / "static"
MOUNT: Final = "/static"


class StaticAssets:
    """Hashes every file under ``directory`` once, at start-up."""

    def __init__(self, directory: Path = STATIC_DIR) -> None:
        self.directory = directory
        self.hashes: dict[str, str] = {
            path.relative_to(directory).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[
                :12
            ]
            for path in sorted(directory.rglob("*"))
            if path.is_file()
        }
        self.files = StaticFiles(directory=directory)

    def url(self, path: str) -> str:
        """The URL of ``path``; an unknown path is a programming error and raises ``KeyError``."""
        return f"{MOUNT}/{path}?v={self.hashes[path]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Under a Mount, root_path ends with the mount point and path is the full path.
        relative = scope["path"][len(scope.get("root_path", "")) :].lstrip("/")
        query = scope.get("query_string", b"").decode("latin-1")
        expected = self.hashes.get(relative)
        fresh = expected is not None and f"v={expected}" in query.split("&")

        async def send_with_cache(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = (
                    "public, max-age=31536000, immutable" if fresh else "no-cache"
                )
            await send(message)

        await self.files(scope, receive, send_with_cache)
