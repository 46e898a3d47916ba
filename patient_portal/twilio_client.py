"""One connection to Twilio's REST API through the official SDK, shared by the adapters
(Verify for sign-in codes, Messaging for booking SMS).

The SDK's own ``AsyncTwilioHttpClient`` uses ``aiohttp.BasicAuth``, which aiohttp 3.14 deprecates
(a warning on every request) and passes aiohttp no timeout; this transport sends the same Basic
header itself and times every request. Everything above the transport — building requests,
parsing answers, raising ``TwilioRestException`` — is the SDK's. ``twilio`` is imported on first
use only, so a deployment on the console providers never loads it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, cast

logger = logging.getLogger(__name__)


class TwilioConnection:
    """A lazily made SDK client on one aiohttp session; ``await aclose()`` when done."""

    def __init__(self, account_sid: str, auth_token: str, *, timeout: float) -> None:
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._timeout = timeout
        self._client: Any = None
        self._http: Any = None

    def client(self) -> Any:
        if self._client is None:
            from twilio.rest import Client  # type: ignore[import-untyped]

            self._http = _aiohttp_transport(self._timeout)
            self._client = Client(self._account_sid, self._auth_token, http_client=self._http)
        return self._client

    async def aclose(self) -> None:
        if self._http is not None:
            http, self._http, self._client = self._http, None, None
            await http.close()


def _aiohttp_transport(timeout: float) -> Any:
    """An SDK ``AsyncHttpClient`` on one aiohttp session (see :class:`TwilioVerifier`)."""
    import aiohttp
    from twilio.http import AsyncHttpClient  # type: ignore[import-untyped]
    from twilio.http.response import Response  # type: ignore[import-untyped]

    class AiohttpTransport(AsyncHttpClient):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(logger, True, timeout)
            self._session: aiohttp.ClientSession | None = None

        async def request(
            self,
            method: str,
            url: str,
            params: dict[str, object] | None = None,
            data: dict[str, object] | None = None,
            headers: dict[str, str] | None = None,
            auth: tuple[str, str] | None = None,
            timeout: float | None = None,  # noqa: ASYNC109 - the SDK's HttpClient interface
            allow_redirects: bool = False,
        ) -> Any:
            if self._session is None:
                self._session = aiohttp.ClientSession()
            sent = dict(headers or {})
            if auth is not None:
                pair = f"{auth[0]}:{auth[1]}".encode()
                sent["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            async with self._session.request(
                method,
                url,
                params=cast(Any, params),
                data=data,
                headers=sent,
                allow_redirects=allow_redirects,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            ) as response:
                return Response(response.status, await response.text(), response.headers)

        async def close(self) -> None:
            if self._session is not None:
                await self._session.close()
                self._session = None

    return AiohttpTransport()
