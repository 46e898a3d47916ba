"""TwilioTurn through the real ``twilio`` SDK, over HTTP on 127.0.0.1, against a fake Tokens API.

The SDK client comes from the portal's :class:`~patient_portal.twilio_client.TwilioConnection`,
as it does in production; nothing of ours is mocked.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiortc import RTCIceServer
from aiortc.rtcicetransport import connection_kwargs

from patient_portal.twilio_client import TwilioConnection
from tests.support.fake_twilio_tokens import ACCOUNT_SID, AUTH_TOKEN, TURN_HOST, FakeTwilioTokens
from tests.support.live_server import free_port, serve
from video.turn import IceServer, TurnTransport, TurnUnavailable, TwilioTurn, build_turn_provider

NOW = datetime(2026, 4, 1, 0, 30, tzinfo=UTC)
PARTICIPANT = "patient-7f3a"


@pytest.fixture
def fake() -> FakeTwilioTokens:
    return FakeTwilioTokens()


@pytest.fixture
def base_url(fake: FakeTwilioTokens) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


@pytest.fixture
async def connection() -> AsyncIterator[TwilioConnection]:
    twilio = TwilioConnection(ACCOUNT_SID, AUTH_TOKEN, timeout=5)
    yield twilio
    await twilio.aclose()


@pytest.fixture
def turn(connection: TwilioConnection, base_url: str) -> TwilioTurn:
    return TwilioTurn(connection.client, base_url=base_url, timeout=5)


def urls(servers: list[IceServer]) -> list[str]:
    return [url for server in servers for url in server.urls]


async def test_a_token_becomes_ordered_ice_servers(
    turn: TwilioTurn, fake: FakeTwilioTokens
) -> None:
    servers = await turn.credentials(PARTICIPANT, NOW)
    [token] = fake.issued
    assert urls(servers) == [
        "stun:global.stun.twilio.com:3478",
        f"turn:{TURN_HOST}:3478?transport=udp",
        f"turn:{TURN_HOST}:3478?transport=tcp",
        f"turns:{TURN_HOST}:443?transport=tcp",
    ]
    assert servers[0].username is None
    assert servers[0].credential is None
    for server in servers[1:]:
        assert (server.username, server.credential) == (token.username, token.password)
        assert server.expires_at == NOW + timedelta(hours=1)


async def test_the_ttl_is_sent_and_sets_the_expiry(
    connection: TwilioConnection, base_url: str, fake: FakeTwilioTokens
) -> None:
    turn = TwilioTurn(connection.client, ttl=timedelta(minutes=20), base_url=base_url)
    servers = await turn.credentials(PARTICIPANT, NOW)
    assert [token.ttl for token in fake.issued] == [1200]
    assert {server.expires_at for server in servers if server.username} == {
        NOW + timedelta(minutes=20)
    }


async def test_each_call_is_a_new_token(turn: TwilioTurn, fake: FakeTwilioTokens) -> None:
    patient = await turn.credentials("patient-1", NOW)
    doctor = await turn.credentials("doctor-1", NOW)
    assert len(fake.issued) == 2
    assert patient[1].credential != doctor[1].credential


async def test_tls_first_for_a_restricted_server_and_aiortc_takes_it(
    connection: TwilioConnection, base_url: str
) -> None:
    turn = TwilioTurn(
        connection.client,
        transports=[TurnTransport.TLS, TurnTransport.TCP],
        base_url=base_url,
    )
    servers = await turn.credentials(PARTICIPANT, NOW)
    assert urls(servers) == [
        "stun:global.stun.twilio.com:3478",
        f"turns:{TURN_HOST}:443?transport=tcp",
        f"turn:{TURN_HOST}:3478?transport=tcp",
    ]
    chosen = connection_kwargs([RTCIceServer(**s.as_rtc_ice_server()) for s in servers])
    assert chosen["turn_server"] == (TURN_HOST, 443)
    assert chosen["turn_ssl"] is True
    assert chosen["turn_transport"] == "tcp"
    assert chosen["stun_server"] == ("global.stun.twilio.com", 3478)


async def test_refused_credentials_are_unavailable_and_logged_as_an_error(
    base_url: str, fake: FakeTwilioTokens, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = TwilioConnection(ACCOUNT_SID, "a-rotated-token", timeout=5)
    turn = TwilioTurn(wrong.client, base_url=base_url)
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(TurnUnavailable) as caught:
            await turn.credentials(PARTICIPANT, NOW)
    finally:
        await wrong.aclose()
    assert caught.value.detail == "twilio: HTTP 401, error 20003"
    assert fake.requests == 1
    assert not fake.issued
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("refused the credentials" in message for message in errors)
    assert "a-rotated-token" not in caplog.text


@pytest.mark.parametrize(
    ("setting", "value", "detail"),
    [
        ("outage", True, "twilio: HTTP 503, error 20500"),
        ("failure", 500, "twilio: HTTP 500, error 20500"),
        ("garbage", True, "twilio: unparsable answer"),
    ],
)
async def test_a_provider_in_trouble_is_unavailable(
    turn: TwilioTurn, fake: FakeTwilioTokens, setting: str, value: object, detail: str
) -> None:
    setattr(fake, setting, value)
    with pytest.raises(TurnUnavailable) as caught:
        await turn.credentials(PARTICIPANT, NOW)
    assert caught.value.detail == detail


async def test_a_slow_server_times_out(
    connection: TwilioConnection, base_url: str, fake: FakeTwilioTokens
) -> None:
    fake.delay = 1.0
    turn = TwilioTurn(connection.client, base_url=base_url, timeout=0.2)
    with pytest.raises(TurnUnavailable, match="timeout"):
        await turn.credentials(PARTICIPANT, NOW)


async def test_a_server_that_is_down_is_unavailable(connection: TwilioConnection) -> None:
    turn = TwilioTurn(connection.client, base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TurnUnavailable, match="twilio: ClientConnectorError"):
        await turn.credentials(PARTICIPANT, NOW)


async def test_credentials_never_reach_the_logs(
    turn: TwilioTurn, fake: FakeTwilioTokens, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        servers = await turn.credentials(PARTICIPANT, NOW)
        logging.getLogger("tsunagu.test").info("issued %r", servers)
    [token] = fake.issued
    assert PARTICIPANT in caplog.text  # the logging did happen, ids included
    for secret in (token.password, token.username, AUTH_TOKEN):
        assert secret not in caplog.text
    assert token.password not in repr(servers)


async def test_the_factory_builds_a_working_twilio_provider(
    connection: TwilioConnection, base_url: str, fake: FakeTwilioTokens
) -> None:
    provider = build_turn_provider(
        "twilio",
        transports=["tls"],
        ttl_seconds=900,
        twilio_client=connection.client,
        twilio_base_url=base_url,
    )
    servers = await provider.credentials(PARTICIPANT, NOW)
    assert urls(servers) == [
        "stun:global.stun.twilio.com:3478",
        f"turns:{TURN_HOST}:443?transport=tcp",
    ]
    assert [token.ttl for token in fake.issued] == [900]
