"""The wire format: every message comes back as it went out; version 1 prediction sets are still read."""

from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartbus import messages
from smartbus.errors import ValidationError
from smartbus.messages import Ping, PredictionSet, StopEvent, StopPrediction, VehicleState

METHODS = ("schedule", "schedule_delay", "history", "recent", "blend", "block_next")


def _stop(trip: str, seq: int, route: str | None = "R1", method: str = "blend") -> StopPrediction:
    return StopPrediction(trip, "20240516", f"S{seq}", seq, 1.8e9 + 60 * seq, 1.8e9 + 55 * seq, method, 12.5, route)  # type: ignore[arg-type]


def test_every_kind_of_message_comes_back_as_it_went_out() -> None:
    sent: list[messages.Message] = [
        Ping("bus-1", 1.8e9, -16.9, 145.7, 90.0, 8.5, "T1", "R1", 0, "20240516", "25:10:00", 1.8e9 + 1),
        VehicleState("bus-1", 1.8e9, -16.9, 145.7, "in_transit", "T1", "R1", "20240516", 812.5, 4.2, -30.0, "S3", 3),
        StopEvent("bus-1", "T1", "20240516", "S3", 3, 1.8e9, None, True, "R1", 1.8e9 - 20, "abc"),
        PredictionSet("bus-1", 1.8e9, (_stop("T1", 4), _stop("T1", 5), _stop("T2", 1, None, "block_next")), "abc"),
        PredictionSet("bus-2", 1.8e9),
    ]
    assert [messages.decode(messages.encode(m)) for m in sent] == sent


def test_a_prediction_set_names_each_trip_once() -> None:
    body = json.loads(messages.encode(PredictionSet("bus-1", 1.8e9, tuple(_stop("T1", k) for k in range(30)))))
    assert body["v"] == 2
    assert [t["trip_id"] for t in body["trips"]] == ["T1"]
    assert len(body["trips"][0]["stops"]) == 30


def test_a_version_1_prediction_set_is_still_read() -> None:
    stop = _stop("T1", 4)
    v1 = {
        "v": 1, "type": "prediction_set", "vehicle_id": "bus-1", "made_at": 1.8e9, "feed_version": None,
        "stops": [{name: getattr(stop, name) for name in StopPrediction._fields}],
    }
    assert messages.decode(json.dumps(v1)) == PredictionSet("bus-1", 1.8e9, (stop,))


@pytest.mark.parametrize(
    "trips",
    [
        [{"trip_id": "T1", "service_date": "20240516", "stops": [["S1", 1, 1.8e9]]}],  # a short row
        [{"trip_id": "T1", "stops": [["S1", 1, 1.8e9, None, "blend", 3.0]]}],  # no service date
        "not a list",
    ],
)
def test_a_malformed_prediction_set_is_a_validation_error(trips: object) -> None:
    raw = json.dumps({"v": 2, "type": "prediction_set", "vehicle_id": "b", "made_at": 1.0, "trips": trips})
    with pytest.raises(ValidationError):
        messages.decode(raw)


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValidationError, match="schema version"):
        messages.decode(json.dumps({"v": 3, "type": "ping"}))


_stops = st.builds(
    StopPrediction,
    trip_id=st.sampled_from(["T1", "T2", "T3"]),
    service_date=st.sampled_from(["20240516", "20240517"]),
    stop_id=st.text(min_size=1, max_size=8),
    stop_sequence=st.integers(0, 500),
    predicted_arrival=st.floats(1e9, 3e9),
    scheduled_arrival=st.none() | st.floats(1e9, 3e9),
    method=st.sampled_from(METHODS),
    uncertainty_s=st.floats(0, 3600),
    route_id=st.none() | st.sampled_from(["R1", "Bắc Ninh 01"]),
)


@given(st.lists(_stops, max_size=40))
def test_any_prediction_set_survives_the_wire(stops: list[StopPrediction]) -> None:
    sent = PredictionSet("bus-7", 1.8e9, tuple(stops), "v1")
    assert messages.decode(messages.encode(sent)) == sent


def test_a_message_written_by_an_older_worker_with_the_standard_library_is_read_the_same() -> None:
    state = VehicleState("xe-07", 1.8e9, 21.18, 106.07, "at_stop", "T1", "Bắc Ninh 01", "20240516", 1e-7, 4.2)
    old_bytes = json.dumps(messages.to_dict(state), separators=(",", ":"), ensure_ascii=False).encode()
    assert messages.decode(old_bytes) == state


def test_a_not_finite_float_written_by_an_older_worker_is_still_read() -> None:
    # json.dumps writes NaN and Infinity, which strict JSON has not: such a message must not be dropped
    ping = json.dumps({"v": 2, "type": "ping", "vehicle_id": "b", "timestamp": 1.8e9, "latitude": 21.0,
                       "longitude": 106.0, "speed": float("nan"), "bearing": float("inf")})
    decoded = messages.decode_as(ping, Ping)
    assert decoded.vehicle_id == "b" and math.isnan(decoded.speed or 0.0) and decoded.bearing == math.inf


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"[1, 2]", b"NaNa", ""])
def test_bytes_that_are_not_a_json_object_are_a_validation_error(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        messages.decode(raw)


def test_a_state_kept_encoded_is_its_own_bytes_and_names_its_vehicle_and_time() -> None:
    state = VehicleState("bus-1", 1.8e9, -16.9, 145.7, "in_transit", "T1", "R1", "20240516", 812.5, 4.2, -30.0, "S3", 3)
    raw = messages.encode(state)

    kept = messages.decode_keeping_states(raw)

    assert kept == messages.EncodedState("bus-1", 1.8e9, raw)
    assert isinstance(kept, messages.EncodedState) and messages.decode(kept.raw) == state
    event = StopEvent("bus-1", "T1", "20240516", "S3", 3, 1.8e9, None, True)
    assert messages.decode_keeping_states(messages.encode(event)) == event  # every other kind is decoded


@pytest.mark.parametrize(
    "change",
    [
        {"latitude": None},  # removed below: a field without a default missing
        {"vehicle_id": 7},
        {"timestamp": "yesterday"},
        {"timestamp": True},
        {"v": 99},
        {"latitude": "north"},
        {"status": "flying"},
        {"next_stop_sequence": 2.5},
        {"trip_id": 5},
        {"delay_s": [1]},
        {"status": None},
    ],
)
def test_a_state_kept_encoded_is_refused_where_decoding_it_would_be(change: dict[str, object]) -> None:
    body = messages.to_dict(VehicleState("bus-1", 1.8e9, -16.9, 145.7, "in_transit"))
    body.update(change)
    if change == {"latitude": None}:
        del body["latitude"]
    raw = json.dumps(body).encode()
    with pytest.raises(ValidationError):
        messages.decode(raw)
    with pytest.raises(ValidationError):
        messages.decode_keeping_states(raw)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("stop_event", {"stop_sequence": "3"}),
        ("stop_event", {"interpolated": 1}),
        ("stop_event", {"departure_time": "soon"}),
        ("prediction_set", {"made_at": None}),
        ("prediction_set", {"predicted_arrival": "soon"}),
        ("prediction_set", {"method": "guess"}),
        ("prediction_set", {"stop_sequence": True}),
        ("prediction_set", {"stop_id": 750339}),
        ("prediction_set", {"trip_id": 42}),
    ],
)
def test_a_field_of_the_wrong_type_is_a_validation_error_naming_it(kind: str, change: dict[str, object]) -> None:
    """Else it would reach the stores: the database refuses it (for ever, batch after batch) or stores nonsense."""
    message: messages.Message = (
        StopEvent("bus-1", "T1", "20240516", "S3", 3, 1.8e9, None, True, "R1", 1.8e9 - 20, "abc")
        if kind == "stop_event" else PredictionSet("bus-1", 1.8e9, (_stop("T1", 4), _stop("T1", 5)), "abc")
    )
    body = messages.to_dict(message)
    ((name, value),) = change.items()
    if name in body:
        body[name] = value
    elif name in body["trips"][0]:
        body["trips"][0][name] = value
    else:  # a field of the second stop's row
        body["trips"][0]["stops"][1][messages._STOP_ROW.index(name)] = value
    with pytest.raises(ValidationError, match=name):
        messages.decode(json.dumps(body))


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
)
def test_every_kind_is_encoded_as_its_dict_would_be(number: float, text: str, maybe: float | None,
                                                    whole: int | None) -> None:
    sent: list[messages.Message] = [
        Ping(text, number, number, number, maybe, maybe, text, None, whole, text, None, maybe),
        VehicleState(text, number, number, number, "stale", text, None, text, maybe, number, maybe, text, whole),
        StopEvent(text, text, text, text, whole or 0, number, maybe, False, None, maybe, text),
        messages.RejectedPing(text, "too_fast", text, number),
        PredictionSet(text, number, (_stop(text, 1),), None),
    ]
    for message in sent:
        assert messages.encode(message) == orjson.dumps(messages.to_dict(message))
