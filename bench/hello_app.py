"""The baseline: a bare Starlette app answering ``GET /`` with a short plain-text body.

Served by the same uvicorn command as Tsunagu (``--factory``, one worker, no access log), so the
ratio Tsunagu / hello measures what the portal adds on top of Starlette and uvicorn themselves.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def hello(request: Request) -> Response:
    return PlainTextResponse("Hello, world!")


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello, methods=["GET"])])


async def echo(socket: WebSocket) -> None:
    """The signaling benchmark's baseline: every text frame straight back."""
    await socket.accept()
    try:
        while True:
            await socket.send_text(await socket.receive_text())
    except WebSocketDisconnect:
        return


def create_echo_app() -> Starlette:
    return Starlette(routes=[Route("/", hello, methods=["GET"]), WebSocketRoute("/echo", echo)])
