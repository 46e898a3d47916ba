"""The pre-call verdict's thresholds, table-driven, and the RTP loss tally (both pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from video.precall import (
    HEADLINES,
    Level,
    PrecallResult,
    RtpTally,
    Thresholds,
    verdict,
)

# A check that passed on every count: 30 fps 640x480, a spoken voice, a short round trip.
GOOD = PrecallResult(
    connected=True,
    seconds=6.0,
    round_trip_ms=40.0,
    uplink_loss=0.0,
    downlink_loss=0.0,
    video_track=True,
    video_frames=180,
    frame_rate=30.0,
    video_bitrate_bps=900_000,
    width=640,
    height=480,
    audio_track=True,
    audio_frames=300,
    audio_level_dbfs=-24.0,
)
RANK = [Level.GOOD, Level.FAIR, Level.TOO_WEAK_FOR_VIDEO, Level.NO_CONNECTION]


@pytest.mark.parametrize(
    ("changes", "level", "reasons"),
    [
        ({}, Level.GOOD, ()),
        # round trip: good up to 300 ms, fair up to 1000 ms, then too weak
        ({"round_trip_ms": 300.0}, Level.GOOD, ()),
        ({"round_trip_ms": 301.0}, Level.FAIR, ("round_trip",)),
        ({"round_trip_ms": 1000.0}, Level.FAIR, ("round_trip",)),
        ({"round_trip_ms": 1001.0}, Level.TOO_WEAK_FOR_VIDEO, ("round_trip",)),
        ({"round_trip_ms": None}, Level.GOOD, ()),
        # loss, the worse direction counts: good up to 2 %, fair up to 8 %
        ({"uplink_loss": 0.02}, Level.GOOD, ()),
        ({"uplink_loss": 0.021}, Level.FAIR, ("loss",)),
        ({"downlink_loss": 0.05}, Level.FAIR, ("loss",)),
        ({"uplink_loss": 0.08, "downlink_loss": 0.0}, Level.FAIR, ("loss",)),
        ({"downlink_loss": 0.081}, Level.TOO_WEAK_FOR_VIDEO, ("loss",)),
        ({"uplink_loss": None, "downlink_loss": None}, Level.GOOD, ()),
        ({"uplink_loss": None, "downlink_loss": 0.3}, Level.TOO_WEAK_FOR_VIDEO, ("loss",)),
        # frame rate: good from 15 fps, fair from 8 fps
        ({"frame_rate": 15.0}, Level.GOOD, ()),
        ({"frame_rate": 14.9}, Level.FAIR, ("frame_rate",)),
        ({"frame_rate": 8.0}, Level.FAIR, ("frame_rate",)),
        ({"frame_rate": 7.9}, Level.TOO_WEAK_FOR_VIDEO, ("frame_rate",)),
        ({"frame_rate": 0.0, "video_frames": 0}, Level.TOO_WEAK_FOR_VIDEO, ("frame_rate",)),
        # resolution, by the shorter side: good from 240, fair from 120
        ({"width": 320, "height": 240}, Level.GOOD, ()),
        ({"width": 480, "height": 640}, Level.GOOD, ()),  # a phone held upright
        ({"width": 320, "height": 180}, Level.FAIR, ("resolution",)),
        ({"width": 120, "height": 160}, Level.FAIR, ("resolution",)),
        ({"width": 160, "height": 90}, Level.TOO_WEAK_FOR_VIDEO, ("resolution",)),
        # the bitrate is reported, never graded (it follows the picture as much as the network)
        ({"video_bitrate_bps": 30_000}, Level.GOOD, ()),
        # the worst figure decides; every cause is named once, in a fixed order
        (
            {"round_trip_ms": 500.0, "uplink_loss": 0.2, "frame_rate": 10.0},
            Level.TOO_WEAK_FOR_VIDEO,
            ("round_trip", "loss", "frame_rate"),
        ),
        # tracks announced but nothing arrived at all
        (
            {
                "video_frames": 0,
                "frame_rate": 0.0,
                "audio_frames": 0,
                "width": None,
                "height": None,
            },
            Level.TOO_WEAK_FOR_VIDEO,
            ("frame_rate", "no_media"),
        ),
        # no camera: video figures are not graded, the rest is
        (
            {
                "video_track": False,
                "video_frames": 0,
                "frame_rate": 0.0,
                "width": None,
                "height": None,
            },
            Level.GOOD,
            (),
        ),
        ({"connected": False}, Level.NO_CONNECTION, ("no_connection",)),
    ],
)
def test_level_and_reasons(
    changes: dict[str, object], level: Level, reasons: tuple[str, ...]
) -> None:
    graded = verdict(replace(GOOD, **changes))  # type: ignore[arg-type]
    assert graded.level is level
    assert graded.reasons == reasons
    assert graded.advice[0] == HEADLINES[level]


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({}, ["connection_good"]),
        ({"round_trip_ms": 450.0}, ["connection_fair", "slow_response"]),
        (
            {"video_track": False, "video_frames": 0, "frame_rate": 0.0},
            ["connection_good", "no_camera"],
        ),
        ({"audio_track": False, "audio_frames": 0}, ["connection_good", "no_microphone"]),
        ({"audio_frames": 0, "audio_level_dbfs": None}, ["connection_good", "no_microphone"]),
        ({"audio_level_dbfs": -60.0}, ["connection_good"]),
        ({"audio_level_dbfs": -60.1}, ["connection_good", "microphone_silent"]),
        ({"audio_level_dbfs": -120.0}, ["connection_good", "microphone_silent"]),
        ({"audio_level_dbfs": None}, ["connection_good"]),  # not measurable is not silent
        (
            {"uplink_loss": 0.1, "video_track": False, "audio_level_dbfs": -90.0},
            ["connection_too_weak", "no_camera", "microphone_silent"],
        ),
        ({"connected": False}, ["no_connection"]),
    ],
)
def test_advice_in_order(changes: dict[str, object], codes: list[str]) -> None:
    assert [a.code for a in verdict(replace(GOOD, **changes)).advice] == codes  # type: ignore[arg-type]


def test_every_advice_reads_in_both_languages() -> None:
    for advice in HEADLINES.values():
        assert advice.ja
        assert advice.en
        assert advice.ja != advice.en
    assert "Wi-Fi" in HEADLINES[Level.TOO_WEAK_FOR_VIDEO].en
    assert "Wi-Fi" in HEADLINES[Level.TOO_WEAK_FOR_VIDEO].ja


def test_thresholds_are_settings() -> None:
    strict = Thresholds(fair_round_trip_ms=20.0, weak_round_trip_ms=30.0)
    assert verdict(GOOD, strict).level is Level.TOO_WEAK_FOR_VIDEO
    assert verdict(GOOD, strict).reasons == ("round_trip",)


figures = st.builds(
    PrecallResult,
    connected=st.just(True),
    round_trip_ms=st.none() | st.floats(0, 5000),
    uplink_loss=st.none() | st.floats(0, 1),
    downlink_loss=st.none() | st.floats(0, 1),
    video_track=st.booleans(),
    video_frames=st.integers(0, 400),
    frame_rate=st.floats(0, 60),
    width=st.none() | st.integers(1, 1920),
    height=st.none() | st.integers(1, 1080),
    audio_track=st.booleans(),
    audio_frames=st.integers(0, 400),
    audio_level_dbfs=st.none() | st.floats(-120, 0),
)


@given(figures, st.floats(0, 2000), st.floats(0, 0.5))
def test_a_worse_network_never_gets_a_better_level(
    result: PrecallResult, extra_delay: float, extra_loss: float
) -> None:
    worse = replace(
        result,
        round_trip_ms=None if result.round_trip_ms is None else result.round_trip_ms + extra_delay,
        uplink_loss=None
        if result.uplink_loss is None
        else min(1.0, result.uplink_loss + extra_loss),
        frame_rate=result.frame_rate / 2,
    )
    assert RANK.index(verdict(worse).level) >= RANK.index(verdict(result).level)


@given(figures)
def test_a_connected_check_is_never_called_unconnected(result: PrecallResult) -> None:
    graded = verdict(result)
    assert graded.level is not Level.NO_CONNECTION
    assert graded.advice[0] == HEADLINES[graded.level]
    assert len({a.code for a in graded.advice}) == len(graded.advice)


# --- RtpTally ------------------------------------------------------------------------------------


def test_tally_counts_gaps_as_loss() -> None:
    tally = RtpTally()
    for seq in (100, 101, 103, 104, 107):
        tally.add(1, seq, 1000, counts=True)
    assert tally.expected_and_received() == (8, 5)
    assert (tally.packets, tally.bytes) == (5, 5000)


def test_tally_follows_the_sequence_number_across_its_wrap() -> None:
    tally = RtpTally()
    for seq in (65533, 65534, 65535, 0, 2):
        tally.add(7, seq, 10, counts=True)
    assert tally.expected_and_received() == (6, 5)


def test_tally_late_and_duplicate_packets() -> None:
    tally = RtpTally()
    for seq in (10, 12, 11, 11, 9):  # 11 late then duplicated, 9 earlier than the first
        tally.add(3, seq, 1, counts=True)
    assert tally.expected_and_received() == (4, 5)  # loss is reported as max(0, expected - got)


def test_tally_keeps_streams_apart_and_retransmissions_out_of_the_loss() -> None:
    tally = RtpTally()
    for seq in range(5):
        tally.add(1, seq, 100, counts=True)
    for seq in (40_000, 40_002):
        tally.add(2, seq, 50, counts=True)
    tally.add(3, 9, 100, counts=False)  # RTX: its own numbering, repairs stream 1
    assert tally.expected_and_received() == (5 + 3, 5 + 2)
    assert (tally.packets, tally.bytes) == (8, 700)


@given(st.integers(0, 0xFFFF), st.lists(st.integers(1, 5), min_size=1, max_size=300))
def test_tally_expected_is_the_span_even_across_wraps(start: int, steps: list[int]) -> None:
    tally = RtpTally()
    seq = start
    tally.add(1, seq, 1, counts=True)
    for step in steps:
        seq += step
        tally.add(1, seq & 0xFFFF, 1, counts=True)
    assert tally.expected_and_received() == (seq - start + 1, len(steps) + 1)
