"""GTFS-realtime output: VehiclePositions, TripUpdates and Alerts built from live state and operator notices.

Pure: values in, a `FeedMessage` out; the app turns it into protobuf bytes or JSON. Frequency-based
trips are expanded by the network as '<trip_id>@HH:MM:SS'; the feed names them as GTFS does, by
trip_id plus start_time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from google.transit import gtfs_realtime_pb2 as rt

from eta.network import Network
from smartbus.live import Arrival
from smartbus.live.notices import Alert, SkippedStops, TripCancellation
from smartbus.messages import VehicleState

GTFS_RT_VERSION: Final = "2.0"
# A vehicle silent this long is stale even if the tracker has not said so yet (seconds).
STALE_AFTER_S: Final = 300.0

_STALE_TEXT: Final = {
    "en": "Bus {vehicle} is not reporting its position; its times are from the timetable.",
    "vi": "Xe {vehicle} không gửi vị trí; giờ đến lấy theo lịch trình.",
}
_OFF_ROUTE_TEXT: Final = {
    "en": "Bus {vehicle} is off its route.",
    "vi": "Xe {vehicle} đang đi lệch tuyến.",
}


@dataclass(frozen=True, slots=True)
class VehicleTrip:
    """One vehicle's trip and its predicted arrivals at the stops ahead."""

    state: VehicleState
    arrivals: Sequence[Arrival]


def new_feed(now: float) -> rt.FeedMessage:
    feed = rt.FeedMessage()
    feed.header.gtfs_realtime_version = GTFS_RT_VERSION
    feed.header.incrementality = rt.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now)
    return feed


def to_json(feed: rt.FeedMessage) -> dict[str, Any]:
    """The JSON form agencies and validators know: proto field names, enums by name."""
    body: dict[str, Any] = MessageToDict(feed, preserving_proto_field_name=True)
    return body


def _trip_descriptor(descriptor: Any, network: Network, trip_id: str, service_date: str | None) -> None:
    base_id, _, start_time = trip_id.rpartition("@") if "@" in trip_id else (trip_id, "", "")
    descriptor.trip_id = base_id
    trip = network.trips.get(trip_id)
    if trip is not None:
        descriptor.route_id = trip.route_id
        if trip.direction_id is not None:
            descriptor.direction_id = trip.direction_id
    if start_time:
        descriptor.start_time = start_time
    if service_date:
        descriptor.start_date = service_date
    descriptor.schedule_relationship = rt.TripDescriptor.SCHEDULED  # said outright: validators warn otherwise


def vehicle_positions(states: Iterable[VehicleState], network: Network, now: float) -> rt.FeedMessage:
    feed = new_feed(now)
    for state in states:
        if state.timestamp > now:
            continue  # a replayed future position would break the header's promise
        entity = feed.entity.add()
        entity.id = state.vehicle_id
        vehicle = entity.vehicle
        vehicle.vehicle.id = state.vehicle_id
        vehicle.timestamp = int(state.timestamp)
        vehicle.position.latitude = state.latitude
        vehicle.position.longitude = state.longitude
        if state.bearing is not None:
            vehicle.position.bearing = state.bearing % 360.0
        if state.speed is not None and state.speed >= 0:
            vehicle.position.speed = state.speed
        if state.trip_id and state.trip_id in network.trips:
            _trip_descriptor(vehicle.trip, network, state.trip_id, state.service_date)
            trip = network.trips[state.trip_id]
            if state.next_stop_id and state.next_stop_id in trip.stop_ids:
                vehicle.stop_id = state.next_stop_id
                if state.next_stop_sequence is not None:
                    vehicle.current_stop_sequence = state.next_stop_sequence
                vehicle.current_status = (
                    rt.VehiclePosition.STOPPED_AT if state.status == "at_stop" else rt.VehiclePosition.IN_TRANSIT_TO
                )
    return feed


def trip_updates(
    vehicle_trips: Iterable[VehicleTrip],
    cancellations: Iterable[TripCancellation],
    skips: Iterable[SkippedStops],
    network: Network,
    now: float,
) -> rt.FeedMessage:
    feed = new_feed(now)
    skipped = {(s.trip_id, s.service_date): set(s.stop_ids) for s in skips}
    cancelled = {(c.trip_id, c.service_date) for c in cancellations if c.trip_id in network.trips}
    seen: set[tuple[str, str]] = set()
    for vehicle_trip in vehicle_trips:
        state = vehicle_trip.state
        if not state.trip_id or state.trip_id not in network.trips or not state.service_date:
            continue
        key = (state.trip_id, state.service_date)
        if key in cancelled or key in seen:
            continue
        arrivals = sorted(
            (a for a in vehicle_trip.arrivals if (a.trip_id, a.service_date) == key),
            key=lambda a: a.stop_sequence,
        )
        skipped_here = skipped.get(key, set())
        rows = _stop_time_updates(network, state.trip_id, arrivals, skipped_here)
        if not rows:
            continue
        seen.add(key)
        entity = feed.entity.add()
        entity.id = f"{state.trip_id}:{state.service_date}"
        update = entity.trip_update
        _trip_descriptor(update.trip, network, state.trip_id, state.service_date)
        update.vehicle.id = state.vehicle_id
        update.timestamp = int(min(state.timestamp, now))
        if state.delay_s is not None:
            update.delay = round(state.delay_s)
        last_time = 0
        for stop_sequence, stop_id, arrival in rows:
            stu = update.stop_time_update.add()
            stu.stop_sequence = stop_sequence
            stu.stop_id = stop_id
            if arrival is None:
                stu.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SKIPPED
            else:
                # Consumers (and MobilityData's validator, E022) want times strictly increasing along the trip;
                # two stops predicted to the same second are a second apart here.
                last_time = max(int(round(arrival.predicted_arrival)), last_time + 1)
                stu.arrival.time = last_time
                stu.arrival.uncertainty = int(round(arrival.uncertainty_s))
                stu.schedule_relationship = rt.TripUpdate.StopTimeUpdate.SCHEDULED
    cancelled_at = {(c.trip_id, c.service_date): c.created_at for c in cancellations}
    for trip_id, service_date in sorted(cancelled):
        entity = feed.entity.add()
        entity.id = f"{trip_id}:{service_date}"
        _trip_descriptor(entity.trip_update.trip, network, trip_id, service_date)
        entity.trip_update.trip.schedule_relationship = rt.TripDescriptor.CANCELED
        entity.trip_update.timestamp = int(min(cancelled_at[(trip_id, service_date)] or now, now))
    return feed


def _stop_time_updates(
    network: Network, trip_id: str, arrivals: Sequence[Arrival], skipped: set[str]
) -> list[tuple[int, str, Arrival | None]]:
    """(stop_sequence, stop_id, arrival or None for SKIPPED), in stop order, times never decreasing.

    Skipped stops are listed from the first predicted stop on (those behind the bus are history).
    """
    trip = network.trips[trip_id]
    by_sequence = {a.stop_sequence: a for a in arrivals}
    first = min(by_sequence) if by_sequence else None
    rows: list[tuple[int, str, Arrival | None]] = []
    last_time = float("-inf")
    for stop_id, sequence in zip(trip.stop_ids, trip.stop_sequences.tolist(), strict=True):
        if first is not None and sequence < first:
            continue
        if stop_id in skipped:
            rows.append((sequence, stop_id, None))
            continue
        arrival = by_sequence.get(sequence)
        if arrival is None or arrival.predicted_arrival < last_time:
            continue  # never publish a time earlier than the stop before it
        last_time = arrival.predicted_arrival
        rows.append((sequence, stop_id, arrival))
    if all(arrival is None for _, _, arrival in rows):
        return rows if skipped else []
    return rows


def alerts(
    states: Iterable[VehicleState],
    operator_alerts: Iterable[Alert],
    network: Network,
    now: float,
) -> rt.FeedMessage:
    """Operators' alerts in force, plus one per stale or off-route vehicle on a trip."""
    feed = new_feed(now)
    for alert in operator_alerts:
        if alert.end is not None and alert.end <= now:
            continue
        entity = feed.entity.add()
        entity.id = f"operator:{alert.alert_id}"
        body = entity.alert
        if alert.start is not None or alert.end is not None:
            period = body.active_period.add()
            if alert.start is not None:
                period.start = int(alert.start)
            if alert.end is not None:
                period.end = int(alert.end)
        _informed(body, network, alert.route_ids, alert.stop_ids, alert.trip_ids)
        body.cause = rt.Alert.Cause.Value(alert.cause)
        body.effect = rt.Alert.Effect.Value(alert.effect)
        _translated(body.header_text, alert.header)
        if alert.description:
            _translated(body.description_text, alert.description)
    for state in states:
        stale = state.status == "stale" or now - state.timestamp > STALE_AFTER_S
        off_route = state.status == "off_route"
        if not (stale or off_route) or not state.trip_id or state.trip_id not in network.trips:
            continue
        entity = feed.entity.add()
        entity.id = f"vehicle:{state.vehicle_id}"
        body = entity.alert
        informed = body.informed_entity.add()
        _trip_descriptor(informed.trip, network, state.trip_id, state.service_date)
        informed.route_id = network.trips[state.trip_id].route_id
        body.cause = rt.Alert.TECHNICAL_PROBLEM if stale else rt.Alert.UNKNOWN_CAUSE
        body.effect = rt.Alert.UNKNOWN_EFFECT if stale else rt.Alert.DETOUR
        texts = _STALE_TEXT if stale else _OFF_ROUTE_TEXT
        _translated(body.header_text, {lang: t.format(vehicle=state.vehicle_id) for lang, t in texts.items()})
    return feed


def _informed(
    body: Any, network: Network, route_ids: Sequence[str], stop_ids: Sequence[str], trip_ids: Sequence[str]
) -> None:
    for route_id in route_ids:
        body.informed_entity.add().route_id = route_id
    for stop_id in stop_ids:
        body.informed_entity.add().stop_id = stop_id
    for trip_id in trip_ids:
        _trip_descriptor(body.informed_entity.add().trip, network, trip_id, None)
    if not body.informed_entity:
        # An alert must inform someone: with no target it concerns all service. Agencies are named by their ids;
        # a feed's one agency may have none (agency.txt allows it), and "" names nothing a consumer can match
        # (the validator's E034), so then every kind of vehicle the feed runs is named instead.
        agency_ids = sorted(a for a in network.agencies if a)
        if agency_ids:
            for agency_id in agency_ids:
                body.informed_entity.add().agency_id = agency_id
        else:
            for route_type in sorted({r.route_type for r in network.routes.values()}):
                body.informed_entity.add().route_type = route_type


def _translated(target: Any, texts: dict[str, str]) -> None:
    for language in sorted(texts):
        translation = target.translation.add()
        translation.text = texts[language]
        translation.language = language
