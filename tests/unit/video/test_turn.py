"""TURN credentials: coturn's shared-secret scheme, the order aiortc depends on, and the factory."""

from __future__ import annotations

import base64
import string
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from aiortc import RTCIceServer
from aiortc.rtcicetransport import connection_kwargs
from hypothesis import given
from hypothesis import strategies as st

from video.turn import (
    IceServer,
    NoTurn,
    SharedSecretTurn,
    TurnTransport,
    TwilioTurn,
    build_turn_provider,
    order_ice_servers,
    shared_secret_credential,
    verify,
)

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
SECRET = "coturn-static-auth-secret"
HOST = "turn.clinic.example.jp"
UDP, TCP, TLS = TurnTransport.UDP, TurnTransport.TCP, TurnTransport.TLS
ID_CHARS = string.ascii_letters + string.digits + "._-"


def aiortc_choice(servers: list[IceServer]) -> dict[str, object]:
    """What aiortc's own ICE transport takes from the list (first STUN, first usable TURN)."""
    return connection_kwargs([RTCIceServer(**server.as_rtc_ice_server()) for server in servers])


def turn_urls(servers: list[IceServer]) -> list[str]:
    return [url for server in servers if server.username for url in server.urls]


# --- the shared-secret scheme -------------------------------------------------------------------


def test_the_credential_matches_an_independent_hmac() -> None:
    # printf '1700000000:p1' | openssl dgst -sha1 -hmac north -binary | base64
    assert shared_secret_credential("north", "1700000000:p1") == "qmV1Ez2SwzrylXCPMqxg9P1hY0Y="


def test_the_username_carries_the_expiry_and_the_participant() -> None:
    [stun, turn] = SharedSecretTurn(SECRET, [HOST]).issue("doctor-12", NOW)
    expiry = NOW + timedelta(hours=1)
    assert turn.username == f"{int(expiry.timestamp())}:doctor-12"
    assert turn.expires_at == expiry
    assert turn.credential == shared_secret_credential(SECRET, turn.username)
    assert stun == IceServer((f"stun:{HOST}:3478",))


def test_credentials_verify_until_they_expire() -> None:
    turn = SharedSecretTurn(SECRET, [HOST], ttl=timedelta(minutes=30))
    [_, server] = turn.issue("patient-1", NOW)
    assert server.username is not None
    assert server.credential is not None
    moments = {
        NOW: True,
        NOW + timedelta(minutes=29, seconds=59): True,
        NOW + timedelta(minutes=30): False,
        NOW + timedelta(days=1): False,
    }
    for moment, valid in moments.items():
        assert verify(server.username, server.credential, SECRET, moment) is valid


def test_a_wrong_secret_or_a_changed_username_does_not_verify() -> None:
    [_, server] = SharedSecretTurn(SECRET, [HOST]).issue("patient-1", NOW)
    assert server.username is not None
    assert server.credential is not None
    assert not verify(server.username, server.credential, "another-secret", NOW)
    later = str(int(server.username.split(":")[0]) + 86400)
    assert not verify(f"{later}:patient-1", server.credential, SECRET, NOW)
    assert not verify(
        server.username.replace("patient-1", "doctor-1"), server.credential, SECRET, NOW
    )


@pytest.mark.parametrize(
    ("username", "credential"),
    [
        ("patient-1", "x"),  # no expiry
        ("1900000000:", "x"),  # no participant
        ("abc:patient-1", "x"),  # expiry not a number
        ("１９００００００００:p", "x"),  # full-width digits
        ("1900000000:p", "not base64!"),
        ("1900000000:p", ""),
    ],
)
def test_malformed_credentials_do_not_verify(username: str, credential: str) -> None:
    assert not verify(username, credential, SECRET, NOW)


@given(participant=st.text(ID_CHARS, min_size=1, max_size=128))
def test_any_valid_participant_id_gets_credentials_that_verify(participant: str) -> None:
    [_, server] = SharedSecretTurn(SECRET, [HOST]).issue(participant, NOW)
    assert server.username is not None
    assert server.credential is not None
    assert server.username.split(":", 1)[1] == participant
    assert verify(server.username, server.credential, SECRET, NOW)
    assert not verify(server.username, server.credential, SECRET + "x", NOW)


@given(
    participant=st.text(max_size=200).filter(
        lambda t: not (0 < len(t) <= 128 and set(t) <= set(ID_CHARS))
    )
)
def test_other_participant_ids_are_refused(participant: str) -> None:
    with pytest.raises(ValueError, match="participant_id"):
        SharedSecretTurn(SECRET, [HOST]).issue(participant, NOW)


@given(username=st.text(), credential=st.text(), secret=st.text(min_size=1))
def test_verify_never_raises(username: str, credential: str, secret: str) -> None:
    assert verify(username, credential, secret, NOW) in (True, False)


def test_participants_get_different_credentials() -> None:
    turn = SharedSecretTurn(SECRET, [HOST])
    patient, doctor = turn.issue("patient-1", NOW)[1], turn.issue("doctor-1", NOW)[1]
    assert patient.credential != doctor.credential


def test_now_in_another_zone_gives_the_same_credentials() -> None:
    jst = NOW.astimezone(timezone(timedelta(hours=9)))
    turn = SharedSecretTurn(SECRET, [HOST])
    assert turn.issue("p", jst) == turn.issue("p", NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        turn.issue("p", NOW.replace(tzinfo=None))


# --- URLs and their order -----------------------------------------------------------------------


def test_default_urls_put_udp_first_and_tls_on_443_last() -> None:
    servers = SharedSecretTurn(SECRET, [HOST]).issue("p", NOW)
    assert servers[0].urls == (f"stun:{HOST}:3478",)
    assert turn_urls(servers) == [
        f"turn:{HOST}:3478?transport=udp",
        f"turn:{HOST}:3478?transport=tcp",
        f"turns:{HOST}:443?transport=tcp",
    ]
    chosen = aiortc_choice(servers)
    assert chosen["stun_server"] == (HOST, 3478)
    assert (chosen["turn_server"], chosen["turn_transport"], chosen["turn_ssl"]) == (
        (HOST, 3478),
        "udp",
        False,
    )


def test_tls_first_is_what_aiortc_uses_behind_a_hospital_firewall() -> None:
    servers = SharedSecretTurn(SECRET, [HOST], transports=[TLS, TCP, UDP]).issue("p", NOW)
    assert turn_urls(servers)[0] == f"turns:{HOST}:443?transport=tcp"
    chosen = aiortc_choice(servers)
    assert (chosen["turn_server"], chosen["turn_transport"], chosen["turn_ssl"]) == (
        (HOST, 443),
        "tcp",
        True,
    )
    [turn] = [server for server in servers if server.username]
    assert chosen["turn_username"] == turn.username
    assert chosen["turn_password"] == turn.credential


def test_tls_only_with_another_port_and_no_stun() -> None:
    servers = SharedSecretTurn(SECRET, [HOST], transports=[TLS], tls_port=5349, stun_urls=()).issue(
        "p", NOW
    )
    assert [server.urls for server in servers] == [(f"turns:{HOST}:5349?transport=tcp",)]


def test_several_hosts_are_ordered_by_transport_then_host() -> None:
    servers = SharedSecretTurn(
        SECRET, ["a.example.jp", "b.example.jp"], transports=[TLS, UDP]
    ).issue("p", NOW)
    assert servers[0].urls == ("stun:a.example.jp:3478",)
    assert turn_urls(servers) == [
        "turns:a.example.jp:443?transport=tcp",
        "turns:b.example.jp:443?transport=tcp",
        "turn:a.example.jp:3478?transport=udp",
        "turn:b.example.jp:3478?transport=udp",
    ]


def creds(*urls: str) -> IceServer:
    return IceServer(urls, "u", "c", NOW)


@pytest.mark.parametrize(
    ("given_servers", "transports", "expected"),
    [
        (  # Twilio's own order, kept for the default preference
            [
                IceServer(("stun:s:3478",)),
                creds("turn:t:3478?transport=udp"),
                creds("turn:t:3478?transport=tcp"),
                creds("turns:t:443?transport=tcp"),
            ],
            [UDP, TCP, TLS],
            [
                ("stun:s:3478",),
                ("turn:t:3478?transport=udp",),
                ("turn:t:3478?transport=tcp",),
                ("turns:t:443?transport=tcp",),
            ],
        ),
        (  # reversed preference; STUN still first
            [
                creds("turn:t:3478?transport=udp"),
                IceServer(("stun:s:3478",)),
                creds("turns:t:443?transport=tcp"),
            ],
            [TLS, UDP],
            [("stun:s:3478",), ("turns:t:443?transport=tcp",), ("turn:t:3478?transport=udp",)],
        ),
        (  # unlisted transports dropped; a turn: URL without transport is UDP (RFC 7065)
            [creds("turn:t:3478", "turn:t:3478?transport=tcp", "turns:t:443?transport=tcp")],
            [TCP],
            [("turn:t:3478?transport=tcp",)],
        ),
        (  # URLs inside one entry are ordered too
            [creds("turn:t:3478?transport=udp", "turns:t:443?transport=tcp")],
            [TLS, UDP],
            [("turns:t:443?transport=tcp", "turn:t:3478?transport=udp")],
        ),
        ([], [UDP], []),
    ],
)
def test_order_ice_servers(
    given_servers: list[IceServer],
    transports: list[TurnTransport],
    expected: list[tuple[str, ...]],
) -> None:
    assert [server.urls for server in order_ice_servers(given_servers, transports)] == expected


def test_the_browser_form_and_the_repr() -> None:
    [stun, turn] = SharedSecretTurn(SECRET, [HOST], transports=[TLS]).issue("p", NOW)
    assert stun.as_rtc_ice_server() == {"urls": [f"stun:{HOST}:3478"]}
    assert turn.as_rtc_ice_server() == {
        "urls": [f"turns:{HOST}:443?transport=tcp"],
        "username": turn.username,
        "credential": turn.credential,
    }
    assert turn.credential is not None
    assert turn.credential not in repr(turn)
    assert SECRET not in repr(SharedSecretTurn(SECRET, [HOST]))


# --- no TURN and the factory --------------------------------------------------------------------


async def test_no_turn_gives_nothing_or_stun_only() -> None:
    assert await NoTurn().credentials("p", NOW) == []
    assert await NoTurn(["stun:192.168.1.10:3478"]).credentials("p", NOW) == [
        IceServer(("stun:192.168.1.10:3478",))
    ]
    with pytest.raises(ValueError, match="STUN"):
        NoTurn(["turn:192.168.1.10:3478"])


async def test_the_factory_builds_each_kind() -> None:
    assert await build_turn_provider("none").credentials("p", NOW) == []
    coturn = build_turn_provider(
        "shared-secret",
        hosts=[HOST],
        secret=SECRET,
        tls_port=443,
        transports=["TLS", " udp"],
        ttl_seconds=600,
    )
    servers = await coturn.credentials("p", NOW)
    assert turn_urls(servers) == [
        f"turns:{HOST}:443?transport=tcp",
        f"turn:{HOST}:3478?transport=udp",
    ]
    assert servers[-1].expires_at == NOW + timedelta(minutes=10)
    twilio = build_turn_provider("twilio", twilio_client=lambda: None)
    assert isinstance(twilio, TwilioTurn)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "coturn"}, "not a valid"),
        ({"kind": "shared-secret", "hosts": [HOST]}, "secret"),
        ({"kind": "shared-secret", "secret": SECRET}, "hosts"),
        ({"kind": "shared-secret", "secret": SECRET, "hosts": ["turn.example.jp:3478"]}, "hosts"),
        ({"kind": "shared-secret", "secret": SECRET, "hosts": [HOST], "tls_port": 0}, "port"),
        ({"kind": "shared-secret", "secret": SECRET, "hosts": [HOST], "ttl_seconds": 30}, "ttl"),
        ({"kind": "none", "transports": ["quic"]}, "not a valid"),
        ({"kind": "none", "transports": []}, "transports"),
        ({"kind": "none", "transports": ["udp", "udp"]}, "transports"),
        ({"kind": "twilio"}, "Twilio client"),
        ({"kind": "twilio", "twilio_client": object, "ttl_seconds": 86401}, "ttl"),
    ],
)
def test_the_factory_refuses_bad_settings(kwargs: dict[str, object], match: str) -> None:
    kind = str(kwargs.pop("kind"))
    with pytest.raises(ValueError, match=match):
        build_turn_provider(kind, **kwargs)  # type: ignore[arg-type]


def test_the_credential_is_base64_of_a_sha1_digest() -> None:
    [_, server] = SharedSecretTurn(SECRET, [HOST]).issue("p", NOW)
    assert server.credential is not None
    assert len(base64.b64decode(server.credential, validate=True)) == 20


def test_twilio_and_aiohttp_are_imported_only_when_twilio_is_used() -> None:
    probe = (
        "import sys, video.turn\n"
        "loaded = {'twilio', 'aiohttp', 'aiortc', 'patient_portal'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
