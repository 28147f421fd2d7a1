"""The behaviour both live stores promise (each test runs against MemoryLiveStore and real Redis)."""

from __future__ import annotations

import asyncio
import json

import orjson

from smartbus.bus.base import Record
from smartbus.live import FLEET_CHANNEL, Arrival
from smartbus.messages import (
    TOPIC_PREDICTIONS,
    TOPIC_VEHICLE_STATES,
    EncodedState,
    PredictionSet,
    StopEvent,
    StopPrediction,
    VehicleState,
    encode,
    to_dict,
)
from smartbus.stream.sinks import LiveSink
from tests.live.conftest import Collector, StoreFactory

T0 = 1_700_000_000.0


def state(vehicle_id: str, timestamp: float, **fields: object) -> VehicleState:
    return VehicleState(
        vehicle_id=vehicle_id,
        timestamp=timestamp,
        latitude=fields.pop("latitude", -16.9),  # type: ignore[arg-type]
        longitude=145.7,
        status="in_transit",
        **fields,  # type: ignore[arg-type]
    )


def prediction(trip_id: str, stop_id: str, at: float, sequence: int = 1) -> StopPrediction:
    return StopPrediction(
        trip_id=trip_id,
        service_date="20140601",
        stop_id=stop_id,
        stop_sequence=sequence,
        predicted_arrival=at,
        scheduled_arrival=at - 60,
        method="schedule_delay",
        uncertainty_s=45.0,
        route_id="R1",
    )


def prediction_set(vehicle_id: str, made_at: float, *stops: StopPrediction) -> PredictionSet:
    return PredictionSet(vehicle_id=vehicle_id, made_at=made_at, stops=stops)


def arrived(trip_id: str, stop_id: str, at: float) -> StopEvent:
    return StopEvent(
        vehicle_id="V1",
        trip_id=trip_id,
        service_date="20140601",
        stop_id=stop_id,
        stop_sequence=1,
        arrival_time=at,
        departure_time=None,
        interpolated=False,
    )


async def test_latest_state_per_vehicle_wins_and_older_is_ignored(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_states([state("V2", T0), state("V1", T0 + 10, latitude=-16.8)])
    await store.put_states([state("V1", T0 + 5, latitude=-17.5)])  # late, out of order

    assert await store.vehicle("V1") == state("V1", T0 + 10, latitude=-16.8)
    assert [v.vehicle_id for v in await store.vehicles()] == ["V1", "V2"]
    assert await store.vehicle("nobody") is None


async def test_fleet_channel_carries_only_accepted_states(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_states([state("V1", T0 + 10)])
    fleet = Collector(store, [FLEET_CHANNEL])
    await fleet.ready(FLEET_CHANNEL)

    await store.put_states([state("V1", T0)])  # older: nothing to publish
    await store.put_states([state("V1", T0 + 20, delay_s=90.0), state("V2", T0 + 20)])
    [(channel, payload)] = await fleet.wait_for(1)
    await fleet.stop()

    assert channel == FLEET_CHANNEL
    published = json.loads(payload)
    assert [(s["vehicle_id"], s["timestamp"], s["delay_s"]) for s in published] == [
        ("V1", T0 + 20, 90.0),
        ("V2", T0 + 20, None),
    ]


async def test_board_lists_predicted_arrivals_soonest_first(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions(
        [
            prediction_set("V1", T0, prediction("late-trip", "S1", T0 + 600)),
            prediction_set("V2", T0, prediction("soon-trip", "S1", T0 + 120), prediction("soon-trip", "S2", T0 + 300)),
        ]
    )

    board = await store.stop_arrivals("S1", now=T0)
    assert board == [
        Arrival(
            stop_id="S1",
            trip_id="soon-trip",
            service_date="20140601",
            route_id="R1",
            vehicle_id="V2",
            stop_sequence=1,
            scheduled_arrival=T0 + 60,
            predicted_arrival=T0 + 120,
            method="schedule_delay",
            uncertainty_s=45.0,
            updated_at=T0,
        ),
        Arrival(
            stop_id="S1",
            trip_id="late-trip",
            service_date="20140601",
            route_id="R1",
            vehicle_id="V1",
            stop_sequence=1,
            scheduled_arrival=T0 + 540,
            predicted_arrival=T0 + 600,
            method="schedule_delay",
            uncertainty_s=45.0,
            updated_at=T0,
        ),
    ]
    assert [a.trip_id for a in await store.stop_arrivals("S2", now=T0)] == ["soon-trip"]
    assert await store.stop_arrivals("unknown-stop", now=T0) == []


async def test_a_stop_id_holding_odd_characters_does_not_spoil_the_rest_of_its_set(make_store: StoreFactory) -> None:
    store = make_store()
    odd = "S\0\"x\\y\n Bến xe"  # a NUL, a quote, a backslash, a newline, Vietnamese text
    await store.put_predictions([
        prediction_set("V1", T0, prediction("T1", "S1", T0 + 60), prediction("T1", odd, T0 + 120, 2),
                       prediction("T1", "Bến xe Bắc Ninh", T0 + 180, 3)),
    ])
    assert [a.predicted_arrival for a in await store.stop_arrivals("S1", now=T0)] == [T0 + 60]
    assert [a.stop_sequence for a in await store.stop_arrivals("Bến xe Bắc Ninh", now=T0)] == [3]
    assert [a.stop_id for a in await store.vehicle_arrivals("V1", now=T0)][0] == "S1"


async def test_the_live_stage_skips_a_message_of_the_wrong_shape_and_writes_the_rest_of_its_batch(
    make_store: StoreFactory,
) -> None:
    """Written, a state whose latitude is a string would fail every reader of the fleet; a stop id that is a number
    would fail the batch, retried for ever, and the live view would freeze."""
    store = make_store()
    odd_state = to_dict(state("V9", T0))
    odd_state["latitude"] = "north"
    odd_set = to_dict(prediction_set("V8", T0, prediction("T1", "S1", T0 + 60)))
    odd_set["trips"][0]["stops"][0][0] = 750339
    batch = [
        Record(TOPIC_VEHICLE_STATES, 0, 0, b"V9", orjson.dumps(odd_state)),
        Record(TOPIC_PREDICTIONS, 0, 1, b"V8", orjson.dumps(odd_set)),
        Record(TOPIC_VEHICLE_STATES, 0, 2, b"V1", encode(state("V1", T0))),
        Record(TOPIC_PREDICTIONS, 0, 3, b"V1", encode(prediction_set("V1", T0, prediction("T2", "S2", T0 + 90)))),
    ]

    await LiveSink(store).handle(batch)

    assert await store.vehicles() == [state("V1", T0)]
    assert [(a.vehicle_id, a.trip_id) for a in await store.stop_arrivals("S2", now=T0)] == [("V1", "T2")]
    assert await store.stop_arrivals("S1", now=T0) == []


async def test_newer_set_replaces_the_vehicles_entries_and_older_set_is_ignored(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions(
        [prediction_set("V1", T0, prediction("T1", "S1", T0 + 60), prediction("T1", "S2", T0 + 180, 2))]
    )
    # The bus passed S1: the next set only predicts S2, with a new time.
    await store.put_predictions([prediction_set("V1", T0 + 30, prediction("T1", "S2", T0 + 200, 2))])
    # A set made before that one arrives late and must not bring S1 back.
    await store.put_predictions([prediction_set("V1", T0 + 10, prediction("T1", "S1", T0 + 70))])

    assert await store.stop_arrivals("S1", now=T0 + 30) == []
    [s2] = await store.stop_arrivals("S2", now=T0 + 30)
    assert (s2.predicted_arrival, s2.updated_at) == (T0 + 200, T0 + 30)


async def test_vehicle_taking_over_a_trip_keeps_it_when_the_old_vehicle_moves_on(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions([prediction_set("V1", T0, prediction("T1", "S1", T0 + 60))])
    await store.put_predictions([prediction_set("V2", T0 + 5, prediction("T1", "S1", T0 + 90))])
    await store.put_predictions([prediction_set("V1", T0 + 10)])  # V1 has nothing left to predict

    [entry] = await store.stop_arrivals("S1", now=T0 + 10)
    assert (entry.vehicle_id, entry.predicted_arrival) == ("V2", T0 + 90)


async def test_arrival_leaves_the_board_and_tells_subscribers(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions(
        [
            prediction_set("V1", T0, prediction("T1", "S1", T0 + 60)),
            prediction_set("V2", T0, prediction("T2", "S1", T0 + 90)),
        ]
    )
    stops = Collector(store, ["stop:*"])
    await stops.ready("stop:probe")

    await store.put_stop_events([arrived("T9", "S1", T0 + 55)])  # not on the board: no news
    await store.put_stop_events([arrived("T1", "S1", T0 + 55)])
    messages = await stops.wait_for(1)
    await stops.stop()

    assert messages[0][0] == "stop:S1"
    assert [a.trip_id for a in await store.stop_arrivals("S1", now=T0 + 55)] == ["T2"]


async def test_the_stop_remembers_which_trips_reached_it(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_stop_events([arrived("T1", "S1", T0), arrived("T2", "S1", T0 + 30), arrived("T3", "S2", T0)])

    assert await store.arrived_trips("S1", now=T0 + 60) == {"20140601:T1", "20140601:T2"}
    assert await store.arrived_trips("S3", now=T0 + 60) == set()


async def test_each_touched_stop_is_published(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions([prediction_set("V1", T0, prediction("T1", "S1", T0 + 60))])
    stops = Collector(store, ["stop:*"])
    await stops.ready("stop:probe")

    # S1 loses the trip, S2 and S3 gain it: all three boards changed.
    await store.put_predictions(
        [prediction_set("V1", T0 + 30, prediction("T1", "S2", T0 + 120, 2), prediction("T1", "S3", T0 + 200, 3))]
    )
    messages = await stops.wait_for(3)
    await stops.stop()
    assert sorted(channel for channel, _ in messages) == ["stop:S1", "stop:S2", "stop:S3"]


async def test_board_hides_arrivals_long_past_and_entries_not_refreshed(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions(
        [
            prediction_set("V1", T0, prediction("T1", "S1", T0 + 60)),
            prediction_set("V2", T0, prediction("T2", "S1", T0 + 3000)),
        ]
    )
    assert [a.trip_id for a in await store.stop_arrivals("S1", now=T0 + 60 + 119)] == ["T1", "T2"]
    # T1 was due more than 2 minutes ago; T2 has not been refreshed for over 10 minutes.
    assert [a.trip_id for a in await store.stop_arrivals("S1", now=T0 + 60 + 121)] == ["T2"]
    assert await store.stop_arrivals("S1", now=T0 + 601) == []


async def test_silent_vehicles_and_boards_expire(make_store: StoreFactory) -> None:
    store = make_store(vehicle_ttl_s=0.2, board_ttl_s=0.2)
    await store.put_states([state("V1", T0)])
    await store.put_predictions([prediction_set("V1", T0, prediction("T1", "S1", T0 + 60))])
    assert await store.vehicle("V1") is not None

    await asyncio.sleep(0.4)

    assert await store.vehicle("V1") is None
    assert await store.vehicles() == []
    assert await store.stop_arrivals("S1", now=T0) == []


async def test_store_answers_ping(make_store: StoreFactory) -> None:
    assert await make_store().ping()


async def test_a_late_prediction_does_not_put_an_arrived_bus_back_on_the_board(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions([prediction_set("V1", T0, prediction("T1", "S1", T0 + 60))])
    await store.put_stop_events([arrived("T1", "S1", T0 + 50)])
    # Made before the arrival, written after it (a lagging partition): must not resurrect the entry.
    await store.put_predictions([prediction_set("V1", T0 + 40, prediction("T1", "S1", T0 + 55))])
    assert await store.stop_arrivals("S1", T0 + 50) == []


async def test_vehicle_arrivals_are_its_latest_predictions_still_on_boards(make_store: StoreFactory) -> None:
    store = make_store()
    await store.put_predictions(
        [prediction_set("V1", T0, prediction("T1", "S1", T0 + 60, 1), prediction("T1", "S2", T0 + 120, 2))]
    )
    await store.put_predictions([prediction_set("V2", T0, prediction("T2", "S1", T0 + 90, 1))])
    await store.put_stop_events([arrived("T1", "S1", T0 + 58)])
    arrivals = await store.vehicle_arrivals("V1", T0 + 60)
    assert [(a.stop_id, a.trip_id) for a in arrivals] == [("S2", "T1")]
    assert await store.vehicle_arrivals("nobody", T0) == []


async def test_a_subscriber_to_one_stop_hears_of_that_stop_only(make_store: StoreFactory) -> None:
    store = make_store()
    one_stop = Collector(store, ["stop:S2"])
    await one_stop.ready("stop:S2")

    stops = [prediction("T1", stop, T0 + 60 * n, n) for n, stop in enumerate(["S1", "S2", "S3"], start=1)]
    await store.put_predictions([prediction_set("V1", T0, *stops)])
    await store.put_predictions([prediction_set("V2", T0, prediction("T2", "S2", T0 + 90))])
    messages = await one_stop.wait_for(2)
    await one_stop.stop()

    # S1 and S3 changed in between, but they would have come before the second S2
    assert messages == [("stop:S2", b""), ("stop:S2", b"")]


async def test_a_vehicle_and_board_written_again_and_again_outlive_their_ttl(make_store: StoreFactory) -> None:
    store = make_store(vehicle_ttl_s=2.0, board_ttl_s=2.0)
    for step in range(30):  # 3 s of writes every 0.1 s, each key written longer than its TTL
        made_at = T0 + step
        await store.put_states([state("V1", made_at)])
        await store.put_predictions([prediction_set("V1", made_at, prediction("T1", "S1", made_at + 300))])
        await asyncio.sleep(0.1)

    assert [s.timestamp for s in await store.vehicles()] == [T0 + 29]
    assert [a.updated_at for a in await store.stop_arrivals("S1", now=T0 + 29)] == [T0 + 29]
    await asyncio.sleep(2.5)  # and once the writes stop, they still expire
    assert await store.vehicles() == []
    assert await store.stop_arrivals("S1", now=T0 + 29) == []


async def test_a_board_emptied_by_an_arrival_and_written_again_still_expires(make_store: StoreFactory) -> None:
    store = make_store(board_ttl_s=1.0)
    await store.put_predictions([prediction_set("V1", T0, prediction("T1", "S1", T0 + 60))])
    await store.put_stop_events([arrived("T1", "S1", T0 + 55)])  # the board's last entry: the board is gone
    await store.put_predictions([prediction_set("V2", T0 + 1, prediction("T2", "S1", T0 + 90))])
    assert [a.trip_id for a in await store.stop_arrivals("S1", now=T0 + 1)] == ["T2"]

    await asyncio.sleep(1.3)

    assert await store.stop_arrivals("S1", now=T0 + 1) == []


async def test_a_state_given_as_the_bytes_the_bus_carried_is_stored_as_that_state(make_store: StoreFactory) -> None:
    store = make_store()
    sent = state("V1", T0, trip_id="T1", delay_s=42.0)
    fleet = Collector(store, [FLEET_CHANNEL])
    await fleet.ready(FLEET_CHANNEL)

    await store.put_states([EncodedState("V1", T0, encode(sent))])
    await store.put_states([EncodedState("V1", T0 - 5, encode(state("V1", T0 - 5)))])  # older: ignored
    [(_, payload)] = await fleet.wait_for(1)
    await fleet.stop()

    assert await store.vehicle("V1") == sent
    assert [s["delay_s"] for s in json.loads(payload)] == [42.0]
