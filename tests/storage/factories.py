"""Small message builders for the storage tests: realistic values, every field set."""

from __future__ import annotations

from smartbus.messages import PredictionSet, RejectedPing, StopEvent, StopPrediction, VehicleState

# 2014-06-02 08:00:00 UTC: a day of the bundled feed's calendar.
T0 = 1401696000.0
SERVICE_DATE = "20140602"


def state(vehicle: str = "bus-1", ts: float = T0, **overrides: object) -> VehicleState:
    fields: dict[str, object] = dict(
        vehicle_id=vehicle, timestamp=ts, latitude=-16.92, longitude=145.77, status="in_transit",
        trip_id="trip-1", route_id="route-1", service_date=SERVICE_DATE, shape_dist=1234.5, offset_m=3.2,
        delay_s=42.0, next_stop_id="stop-2", next_stop_sequence=2, speed=8.5, bearing=90.0, feed_version="v1",
    )
    fields.update(overrides)
    return VehicleState(**fields)  # type: ignore[arg-type]


def event(
    sequence: int = 1,
    arrival: float = T0,
    departure: float | None = None,
    *,
    trip: str = "trip-1",
    scheduled: float | None = T0,
    route: str | None = "route-1",
    stop: str | None = None,
) -> StopEvent:
    return StopEvent(
        vehicle_id="bus-1", trip_id=trip, service_date=SERVICE_DATE, stop_id=stop or f"stop-{sequence}",
        stop_sequence=sequence, arrival_time=arrival, departure_time=departure, interpolated=False,
        route_id=route, scheduled_arrival=scheduled, feed_version="v1",
    )


def prediction_set(made_at: float, arrivals: dict[int, float], *, trip: str = "trip-1") -> PredictionSet:
    """One vehicle update predicting `arrivals` (stop_sequence -> predicted arrival)."""
    return PredictionSet(
        vehicle_id="bus-1",
        made_at=made_at,
        stops=tuple(
            StopPrediction(
                trip_id=trip, service_date=SERVICE_DATE, stop_id=f"stop-{seq}", stop_sequence=seq,
                predicted_arrival=arrival, scheduled_arrival=arrival - 30, method="schedule_delay",
                uncertainty_s=45.0, route_id="route-1",
            )
            for seq, arrival in arrivals.items()
        ),
        feed_version="v1",
    )


def rejected(payload: str = '{"vehicle_id": "x", "latitude": 123}', at: float = T0) -> RejectedPing:
    return RejectedPing(payload=payload, reason="latitude_out_of_range", detail="latitude=123", received_at=at)
