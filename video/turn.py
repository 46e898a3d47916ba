"""Short-lived STUN/TURN credentials, issued per participant of a consult.

A media path between patient and doctor is peer-to-peer when it can be, and relayed through TURN
when a firewall or NAT forbids it. Each participant gets their own credentials, valid for
``ttl`` (one hour by default), asked for when they join or rebuild their peer connection.

:class:`TurnProvider` is the port; three adapters implement it:

- :class:`SharedSecretTurn` — a self-hosted coturn with ``use-auth-secret`` and
  ``static-auth-secret`` (the "TURN REST API" scheme). Pure: no I/O, nothing stored.
- :class:`TwilioTurn` — Twilio Network Traversal Service (``POST …/Tokens.json``) through the
  official SDK. Its failures become :class:`TurnUnavailable`: the caller goes on without TURN, and
  a direct connection may still work.
- :class:`NoTurn` — the embedded demo on a local network: no servers, or STUN only.

**Order matters.** Browsers use every entry of the list (ICE priorities choose among the
candidates), but aiortc — the server's own peer — takes only the *first* STUN URL and the *first*
usable TURN URL and ignores the rest. So every adapter returns STUN first, then TURN ordered by
the configured transport preference (``transports``): the first TURN URL is the one aiortc will
use. The default ``udp, tcp, tls`` suits a cloud server with open UDP; a deployment whose server
sits behind a restrictive egress puts ``tls`` first.

**Hospital networks** often let only TCP 443 out, through proxies that inspect traffic:
``turns:<host>:443?transport=tcp`` (TURN inside TLS, with a public certificate on the TURN host)
passes where ``turn:`` on 3478 does not. The ``tls`` transport builds that URL; its port is
configurable.

Credentials are secrets: :class:`IceServer` keeps ``credential`` out of its ``repr``, and nothing
here logs usernames or credentials.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TRANSPORTS",
    "DEFAULT_TTL",
    "IceServer",
    "NoTurn",
    "SharedSecretTurn",
    "TurnError",
    "TurnProvider",
    "TurnProviderKind",
    "TurnTransport",
    "TurnUnavailable",
    "TwilioTurn",
    "build_turn_provider",
    "order_ice_servers",
    "shared_secret_credential",
    "verify",
]

DEFAULT_TTL: Final = timedelta(hours=1)
MAX_TWILIO_TTL: Final = timedelta(days=1)  # Twilio refuses a longer Ttl; it is also its default
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}")  # a DNS name or IPv4 address (aiortc has no IPv6 URLs)


class TurnError(Exception):
    """Base of this module's errors."""


class TurnUnavailable(TurnError):
    """No TURN credentials could be had (provider refused, down, slow or unintelligible).

    The call can still be tried without TURN: a direct or STUN-assisted path may work.
    ``detail`` names the cause (``"twilio: HTTP 401, error 20003"``), never a credential.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TurnTransport(StrEnum):
    """How a client reaches the TURN server."""

    UDP = "udp"  # turn:host:3478?transport=udp — the best path when UDP is open
    TCP = "tcp"  # turn:host:3478?transport=tcp
    TLS = "tls"  # turns:host:443?transport=tcp — what strict hospital firewalls let through


DEFAULT_TRANSPORTS: Final = (TurnTransport.UDP, TurnTransport.TCP, TurnTransport.TLS)


@dataclass(frozen=True)
class IceServer:
    """One ``RTCIceServer`` entry: STUN entries have no username, credential or expiry.

    Neither the username (Twilio's is half of the credential pair) nor the credential is in the
    ``repr``, so logging an entry leaks nothing."""

    urls: tuple[str, ...]
    username: str | None = field(default=None, repr=False)
    credential: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None

    def as_rtc_ice_server(self) -> dict[str, Any]:
        """The entry as a browser's ``RTCPeerConnection({iceServers: [...]})`` takes it (and as
        aiortc's ``RTCIceServer(**entry)`` does). Contains the credential: send it to its
        participant only."""
        entry: dict[str, Any] = {"urls": list(self.urls)}
        if self.username is not None:
            entry["username"] = self.username
        if self.credential is not None:
            entry["credential"] = self.credential
        return entry


class TurnProvider(Protocol):
    async def credentials(self, participant_id: str, now: datetime) -> list[IceServer]:
        """ICE servers for one participant, STUN first and the preferred TURN URL first among
        the TURN ones. May raise :class:`TurnUnavailable`."""
        ...


class TurnProviderKind(StrEnum):
    NONE = "none"
    SHARED_SECRET = "shared-secret"  # noqa: S105 - the scheme's name, not a secret
    TWILIO = "twilio"


# --- ordering -----------------------------------------------------------------------------------


def _transport_of(url: str) -> TurnTransport | None:
    """The TURN transport of ``url``; None for STUN. A ``turn:`` URL without ``transport`` is
    UDP (RFC 7065); ``turns:`` is TLS over TCP."""
    scheme, _, rest = url.partition(":")
    _, _, query = rest.partition("?")
    transport = query.removeprefix("transport=").lower() if query else "udp"
    if scheme == "turns":
        return TurnTransport.TLS
    if scheme == "turn":
        return TurnTransport.TCP if transport == "tcp" else TurnTransport.UDP
    return None


def order_ice_servers(
    servers: Iterable[IceServer], transports: Sequence[TurnTransport] = DEFAULT_TRANSPORTS
) -> list[IceServer]:
    """STUN entries first, then TURN URLs in the order of ``transports``; TURN URLs whose
    transport is not listed are dropped, and so are entries left without URLs. Stable: equal
    preferences keep their order. See the module docstring for why the order matters."""
    rank = {transport: index for index, transport in enumerate(transports)}
    stun: list[IceServer] = []
    turn: list[tuple[int, int, IceServer]] = []
    for position, server in enumerate(servers):
        kept = [url for url in server.urls if _transport_of(url) is None]
        if kept:
            stun.append(_with_urls(server, kept))
        relayed = sorted(
            (rank[transport], index, url)
            for index, url in enumerate(server.urls)
            if (transport := _transport_of(url)) is not None and transport in rank
        )
        if relayed:
            urls = [url for _, _, url in relayed]
            turn.append((relayed[0][0], position, _with_urls(server, urls)))
    return stun + [server for _, _, server in sorted(turn, key=lambda item: item[:2])]


def _with_urls(server: IceServer, urls: list[str]) -> IceServer:
    return IceServer(tuple(urls), server.username, server.credential, server.expires_at)


def _check_transports(transports: Sequence[TurnTransport]) -> tuple[TurnTransport, ...]:
    chosen = tuple(TurnTransport(transport) for transport in transports)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError("transports: one or more of udp, tcp, tls, each at most once")
    return chosen


def _check_ttl(ttl: timedelta, maximum: timedelta | None = None) -> timedelta:
    if ttl < timedelta(minutes=1):
        raise ValueError(f"ttl must be at least 60 seconds: {ttl}")
    if maximum is not None and ttl > maximum:
        raise ValueError(f"ttl must be at most {int(maximum.total_seconds())} seconds: {ttl}")
    if ttl != timedelta(seconds=int(ttl.total_seconds())):
        raise ValueError("ttl must be whole seconds")
    return ttl


def _check_participant(participant_id: str) -> None:
    """Participant ids become part of the TURN username, which coturn logs and STUN runs
    through SASLprep: keep them short, ASCII and opaque (an id, never a name)."""
    if not _PARTICIPANT_ID.fullmatch(participant_id):
        raise ValueError("participant_id: 1-128 characters of A-Z a-z 0-9 . _ -")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _stun_urls(urls: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(urls)
    for url in chosen:
        if not url.startswith(("stun:", "stuns:")):
            raise ValueError(f"not a STUN URL: {url!r}")
    return chosen


# --- coturn shared secret -----------------------------------------------------------------------


def shared_secret_credential(secret: str, username: str) -> str:
    """coturn's REST-API password: base64(HMAC-SHA1(key=secret, message=username))."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(username: str, credential: str, secret: str, now: datetime) -> bool:
    """True when ``username``/``credential`` were made with ``secret`` and have not expired.

    coturn (``use-auth-secret``) makes this check itself when a client authenticates; Tsunagu
    never needs it to admit anyone — it is here for tests and for diagnosing a refused relay.
    """
    expiry, separator, participant = username.partition(":")
    if not separator or not (expiry.isascii() and expiry.isdigit()) or not participant:
        return False
    try:
        given = base64.b64decode(credential, validate=True)
        expected = base64.b64decode(shared_secret_credential(secret, username))
    except (binascii.Error, ValueError):  # not base64, or text that is not UTF-8 encodable
        return False
    return hmac.compare_digest(given, expected) and int(expiry) > now.timestamp()


class SharedSecretTurn:
    """coturn with ``use-auth-secret`` / ``static-auth-secret=<secret>``.

    Username ``<expiry unix time>:<participant id>``, credential base64(HMAC-SHA1(secret,
    username)); coturn recomputes the credential and refuses it once the expiry has passed, so
    nothing is stored here or there. URLs for every host: ``turn:host:port?transport=udp``,
    ``…?transport=tcp`` and ``turns:host:tls_port?transport=tcp``, as ``transports`` selects and
    orders them (transport first, then host). ``stun_urls`` defaults to coturn's own STUN on the
    first host (``stun:host:port``); pass ``()`` for none.
    """

    def __init__(
        self,
        secret: str,
        hosts: Sequence[str],
        *,
        port: int = 3478,
        tls_port: int = 443,
        transports: Sequence[TurnTransport] = DEFAULT_TRANSPORTS,
        stun_urls: Sequence[str] | None = None,
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        if not secret:
            raise ValueError("secret: coturn's static-auth-secret is required")
        if not hosts or not all(_HOST.fullmatch(host) for host in hosts):
            raise ValueError("hosts: one or more DNS names or IPv4 addresses, without ports")
        for value in (port, tls_port):
            if not 0 < value < 65536:
                raise ValueError(f"port out of range: {value}")
        self._secret = secret
        self._ttl = _check_ttl(ttl)
        self._stun = _stun_urls(stun_urls if stun_urls is not None else [f"stun:{hosts[0]}:{port}"])
        built = {
            TurnTransport.UDP: [f"turn:{host}:{port}?transport=udp" for host in hosts],
            TurnTransport.TCP: [f"turn:{host}:{port}?transport=tcp" for host in hosts],
            TurnTransport.TLS: [f"turns:{host}:{tls_port}?transport=tcp" for host in hosts],
        }
        self._turn = tuple(url for t in _check_transports(transports) for url in built[t])

    def __repr__(self) -> str:
        return f"SharedSecretTurn(turn={list(self._turn)!r}, ttl={self._ttl})"

    def issue(self, participant_id: str, now: datetime) -> list[IceServer]:
        """The credentials, computed (the synchronous core of :meth:`credentials`)."""
        _check_participant(participant_id)
        expiry = int((_aware(now) + self._ttl).timestamp())
        expires_at = datetime.fromtimestamp(expiry, UTC)
        username = f"{expiry}:{participant_id}"
        servers = [IceServer(self._stun)] if self._stun else []
        credential = shared_secret_credential(self._secret, username)
        return [*servers, IceServer(self._turn, username, credential, expires_at)]

    async def credentials(self, participant_id: str, now: datetime) -> list[IceServer]:
        return self.issue(participant_id, now)


# --- no TURN ------------------------------------------------------------------------------------


class NoTurn:
    """No relay: the embedded demo on one local network. STUN entries only when given."""

    def __init__(self, stun_urls: Sequence[str] = ()) -> None:
        self._stun = _stun_urls(stun_urls)

    async def credentials(self, participant_id: str, now: datetime) -> list[IceServer]:
        _check_participant(participant_id)
        return [IceServer(self._stun)] if self._stun else []


# --- Twilio Network Traversal Service -----------------------------------------------------------

_AUTH_FAILED: Final = 20003


class TwilioTurn:
    """TURN credentials from Twilio's Network Traversal Service, one token per call.

    ``client`` returns the official SDK's ``twilio.rest.Client`` and is called on first use,
    inside the running loop (the portal passes ``TwilioConnection(...).client``, which owns — and
    closes — the HTTP session). The SDK's asyncio API (``tokens.create_async(ttl=…)``) runs under
    ``asyncio.timeout(timeout)``, without retries. ``base_url`` points the main API domain
    elsewhere (the tests' fake server).

    Twilio's ``ice_servers`` become :class:`IceServer` entries expiring ``ttl`` after ``now``,
    reordered by ``transports`` like the other adapters'. Failures become
    :class:`TurnUnavailable`: refused credentials (401/403, 20003) are logged at ERROR, outages
    (429, 5xx, timeouts, network errors, answers that are not JSON or hold no TURN server) at
    WARNING. The token's username and password are never logged.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        ttl: timedelta = DEFAULT_TTL,
        transports: Sequence[TurnTransport] = DEFAULT_TRANSPORTS,
        base_url: str | None = None,
        timeout: float = 10,
    ) -> None:
        self._client = client
        self._ttl = _check_ttl(ttl, MAX_TWILIO_TTL)
        self._transports = _check_transports(transports)
        self._base_url = base_url
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"TwilioTurn(ttl={self._ttl}, transports={[str(t) for t in self._transports]})"

    async def credentials(self, participant_id: str, now: datetime) -> list[IceServer]:
        _check_participant(participant_id)
        issued = _aware(now)
        client = self._client()
        if self._base_url is not None:
            client.api.base_url = self._base_url
        token = await self._call(client.tokens.create_async(ttl=int(self._ttl.total_seconds())))
        ttl = str(getattr(token, "ttl", "") or "")
        lifetime = timedelta(seconds=int(ttl)) if ttl.isascii() and ttl.isdigit() else self._ttl
        expires_at = issued + min(lifetime, self._ttl)
        servers = order_ice_servers(
            _from_twilio(getattr(token, "ice_servers", None), expires_at), self._transports
        )
        if not any(server.username for server in servers):
            logger.warning("Twilio issued a token without a usable TURN server")
            raise TurnUnavailable("twilio: no TURN server in the token")
        logger.info("TURN credentials from Twilio for participant %s", participant_id)
        return servers

    async def _call(self, call: Any) -> Any:
        import aiohttp
        from twilio.base.exceptions import TwilioException  # type: ignore[import-untyped]

        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError:
            logger.warning("Twilio Network Traversal did not answer within %ss", self._timeout)
            raise TurnUnavailable("twilio: timeout") from None
        except (aiohttp.ClientError, OSError) as error:
            logger.warning("Twilio Network Traversal is unreachable: %s", type(error).__name__)
            raise TurnUnavailable(f"twilio: {type(error).__name__}") from None
        except TwilioException as error:
            raise _translate(error) from None
        except ValueError:  # a 2xx answer that is not JSON: a proxy or captive portal
            logger.warning("Twilio Network Traversal answered with something that is not JSON")
            raise TurnUnavailable("twilio: unparsable answer") from None


def _translate(error: Any) -> TurnUnavailable:
    raw_code = str(getattr(error, "code", None))
    status = int(getattr(error, "status", 0) or 0)
    code = int(raw_code) if raw_code.isascii() and raw_code.isdigit() else None
    detail = f"twilio: HTTP {status}, error {code}"
    if code == _AUTH_FAILED or status in (401, 403):
        logger.error("Twilio refused the credentials (account SID / auth token): %s", detail)
    else:
        logger.warning("Twilio Network Traversal is unavailable: %s", detail)
    return TurnUnavailable(detail)


def _from_twilio(raw: Any, expires_at: datetime) -> list[IceServer]:
    """Twilio's ``ice_servers`` (``{url, urls, username?, credential?}``; ``urls`` a string or a
    list) as entries; malformed ones are skipped."""
    servers: list[IceServer] = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        urls = entry.get("urls") or entry.get("url")
        listed = [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []
        chosen = tuple(url for url in listed if isinstance(url, str) and ":" in url)
        username, credential = entry.get("username"), entry.get("credential")
        if not chosen:
            continue
        if isinstance(username, str) and isinstance(credential, str):
            servers.append(IceServer(chosen, username, credential, expires_at))
        else:
            servers.append(IceServer(tuple(u for u in chosen if _transport_of(u) is None)))
    return [server for server in servers if server.urls]


# --- composition --------------------------------------------------------------------------------


def build_turn_provider(
    kind: TurnProviderKind | str,
    *,
    hosts: Sequence[str] = (),
    secret: str = "",
    port: int = 3478,
    tls_port: int = 443,
    transports: Sequence[TurnTransport | str] = DEFAULT_TRANSPORTS,
    stun_urls: Sequence[str] = (),
    ttl_seconds: int = int(DEFAULT_TTL.total_seconds()),
    twilio_client: Callable[[], Any] | None = None,
    twilio_base_url: str | None = None,
    timeout: float = 10,
) -> TurnProvider:
    """The provider the settings describe, from plain values; ``ValueError`` names what is wrong.

    - ``none``: :class:`NoTurn` with ``stun_urls``.
    - ``shared-secret``: :class:`SharedSecretTurn`; needs ``hosts`` and ``secret``. An empty
      ``stun_urls`` means coturn's own STUN on the first host.
    - ``twilio``: :class:`TwilioTurn`; needs ``twilio_client`` (a callable returning the SDK
      client). ``hosts``, ``secret``, ports and ``stun_urls`` are not used: Twilio sends its own.
    """
    chosen = _check_transports([TurnTransport(str(t).strip().lower()) for t in transports])
    ttl = timedelta(seconds=ttl_seconds)
    match TurnProviderKind(kind):
        case TurnProviderKind.NONE:
            return NoTurn(stun_urls)
        case TurnProviderKind.SHARED_SECRET:
            return SharedSecretTurn(
                secret,
                hosts,
                port=port,
                tls_port=tls_port,
                transports=chosen,
                stun_urls=stun_urls or None,
                ttl=ttl,
            )
        case TurnProviderKind.TWILIO:
            if twilio_client is None:
                raise ValueError("twilio: a Twilio client (account SID and auth token) is needed")
            return TwilioTurn(
                twilio_client,
                ttl=ttl,
                transports=chosen,
                base_url=twilio_base_url,
                timeout=timeout,
            )
