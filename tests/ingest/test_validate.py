from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.validate import PingRejected, ping_from_fields, ping_from_message
from smartbus import messages
from smartbus.messages import Ping

GOOD = {"vehicle_id": "bus-7", "timestamp": 1_700_000_000, "latitude": 21.186, "longitude": 106.076}


def test_a_good_ping_is_normalised() -> None:
    ping = ping_from_fields({**GOOD, "bearing": 370, "speed": "8.5", "trip_id": "", "direction_id": 1})
    assert ping.vehicle_id == "bus-7"
    assert ping.bearing == pytest.approx(10.0)
    assert ping.speed == 8.5
    assert ping.trip_id is None  # an empty cell means missing
    assert ping.direction_id == 1


@pytest.mark.parametrize(
    ("change", "reason", "field"),
    [
        ({"latitude": 200}, "latitude_out_of_range", "latitude"),
        ({"longitude": -181}, "longitude_out_of_range", "longitude"),
        ({"latitude": 0, "longitude": 0}, "null_island", "latitude"),
        ({"vehicle_id": None}, "missing_vehicle_id", "vehicle_id"),
        ({"vehicle_id": "x" * 500}, "bad_vehicle_id", "vehicle_id"),
        ({"vehicle_id": "bus\n7"}, "bad_vehicle_id", "vehicle_id"),
        ({"timestamp": "yesterday"}, "bad_timestamp", "timestamp"),
        ({"latitude": float("nan")}, "bad_latitude", "latitude"),
        ({"speed": -3}, "bad_speed", "speed"),
        ({"direction_id": 4}, "bad_direction_id", "direction_id"),
        ({"start_date": "2026-11-24"}, "bad_start_date", "start_date"),
    ],
)
def test_bad_pings_are_rejected_with_a_reason_naming_the_field(
    change: dict[str, object], reason: str, field: str
) -> None:
    with pytest.raises(PingRejected) as caught:
        ping_from_fields({**GOOD, **change})
    assert caught.value.code == reason
    assert caught.value.field == field
    assert field in str(caught.value)


def test_the_clock_bounds_timestamps_only_when_given() -> None:
    now = GOOD["timestamp"]
    assert isinstance(now, int)
    with pytest.raises(PingRejected, match="ahead") as future:
        ping_from_fields({**GOOD, "timestamp": now + 3600}, now=now)
    assert future.value.code == "timestamp_in_future"
    with pytest.raises(PingRejected) as old:
        ping_from_fields({**GOOD, "timestamp": now - 3 * 86400}, now=now)
    assert old.value.code == "timestamp_too_old"
    assert ping_from_fields({**GOOD, "timestamp": now - 3 * 86400}).timestamp == now - 3 * 86400


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (json.dumps({**GOOD, "v": 99}).encode(), "schema_version"),
        (json.dumps({**GOOD, "type": "stop_event", "v": 1}).encode(), "wrong_type"),
    ],
)
def test_bus_messages_that_are_not_pings_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(PingRejected) as caught:
        ping_from_message(raw)
    assert caught.value.code == reason


def test_an_encoded_ping_round_trips() -> None:
    ping = Ping("v1", 1_700_000_000.5, -16.92, 145.77, bearing=90.0, trip_id="t1", start_date="20141124")
    assert ping_from_message(messages.encode(ping)) == ping


@given(st.dictionaries(st.sampled_from([*GOOD, "speed", "bearing", "trip_id"]), st.none() | st.integers()
                       | st.floats() | st.text() | st.booleans() | st.lists(st.integers())))
def test_any_payload_either_validates_or_is_rejected_never_crashes(body: dict[str, object]) -> None:
    try:
        ping = ping_from_fields(body)
    except PingRejected as exc:
        assert exc.code
    else:
        assert -90 <= ping.latitude <= 90 and -180 <= ping.longitude <= 180
