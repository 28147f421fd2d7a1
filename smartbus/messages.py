"""Every message that crosses the bus (Kafka or the in-process bus), versioned.

Units: times are UTC epoch seconds (float), distances metres, speeds m/s, bearings degrees
clockwise from north. `service_date` is the GTFS service day as a YYYYMMDD string.

Wire format: one JSON object per message, `{"v": SCHEMA_VERSION, "type": <kind>, ...fields}`.
Everyone encodes and decodes through `encode` / `decode` here, so a schema change happens in one place.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

from smartbus.errors import ValidationError

SCHEMA_VERSION: Final = 1

# Kafka topics (and in-process bus topics): one name each, used everywhere.
TOPIC_PINGS: Final = "pings"
TOPIC_PINGS_REJECTED: Final = "pings.rejected"
TOPIC_VEHICLE_STATES: Final = "vehicle-states"
TOPIC_STOP_EVENTS: Final = "stop-events"
TOPIC_PREDICTIONS: Final = "predictions"
ALL_TOPICS: Final = (
    TOPIC_PINGS,
    TOPIC_PINGS_REJECTED,
    TOPIC_VEHICLE_STATES,
    TOPIC_STOP_EVENTS,
    TOPIC_PREDICTIONS,
)

VehicleStatus = Literal["in_transit", "at_stop", "layover", "off_route", "stale", "unassigned"]
PredictionMethod = Literal["schedule", "schedule_delay", "history", "recent", "blend", "block_next"]


@dataclass(frozen=True, slots=True)
class Ping:
    """One position report from a vehicle, as the device (or a GTFS-rt feed) sent it."""

    vehicle_id: str
    timestamp: float  # UTC epoch seconds when the fix was taken
    latitude: float  # WGS84 degrees
    longitude: float  # WGS84 degrees
    bearing: float | None = None  # degrees clockwise from north
    speed: float | None = None  # m/s
    trip_id: str | None = None
    route_id: str | None = None
    direction_id: int | None = None
    start_date: str | None = None  # YYYYMMDD
    start_time: str | None = None  # HH:MM:SS, may exceed 24:00:00
    received_at: float | None = None  # UTC epoch seconds when ingest received it


@dataclass(frozen=True, slots=True)
class RejectedPing:
    """A ping that failed validation, kept with its original payload so nothing is silently lost."""

    payload: str  # the original bytes as text (replacement chars for bad UTF-8)
    reason: str  # machine-readable reason, e.g. "latitude_out_of_range"
    detail: str  # human-readable explanation naming the field and value
    received_at: float  # UTC epoch seconds


@dataclass(frozen=True, slots=True)
class VehicleState:
    """What the tracker knows about a vehicle after its latest accepted ping."""

    vehicle_id: str
    timestamp: float  # UTC epoch seconds of the ping this state comes from
    latitude: float  # position as reported (WGS84 degrees)
    longitude: float
    status: VehicleStatus
    trip_id: str | None = None
    route_id: str | None = None
    service_date: str | None = None  # YYYYMMDD
    shape_dist: float | None = None  # metres along the trip's shape
    offset_m: float | None = None  # distance from the shape, metres
    delay_s: float | None = None  # schedule deviation, seconds, positive = late
    next_stop_id: str | None = None
    next_stop_sequence: int | None = None
    speed: float | None = None  # m/s
    bearing: float | None = None  # degrees
    feed_version: str | None = None


@dataclass(frozen=True, slots=True)
class StopEvent:
    """A vehicle reached (and possibly left) a stop on its trip."""

    vehicle_id: str
    trip_id: str
    service_date: str  # YYYYMMDD
    stop_id: str
    stop_sequence: int  # the feed's value
    arrival_time: float  # UTC epoch seconds
    departure_time: float | None  # UTC epoch seconds; None when not yet known
    interpolated: bool  # True when the stop was passed during a gap between pings
    route_id: str | None = None
    scheduled_arrival: float | None = None  # UTC epoch seconds
    feed_version: str | None = None


@dataclass(frozen=True, slots=True)
class StopPrediction:
    """Predicted arrival of one trip at one stop."""

    trip_id: str
    service_date: str  # YYYYMMDD
    stop_id: str
    stop_sequence: int
    predicted_arrival: float  # UTC epoch seconds
    scheduled_arrival: float | None  # UTC epoch seconds
    method: PredictionMethod
    uncertainty_s: float  # one standard deviation, seconds
    route_id: str | None = None


@dataclass(frozen=True, slots=True)
class PredictionSet:
    """All predictions made for one vehicle after one ping (one message per vehicle update)."""

    vehicle_id: str
    made_at: float  # UTC epoch seconds (the ping's timestamp: the replay clock)
    stops: tuple[StopPrediction, ...] = field(default_factory=tuple)
    feed_version: str | None = None


Message = Ping | RejectedPing | VehicleState | StopEvent | PredictionSet
_KINDS: Final[dict[str, type[Any]]] = {
    "ping": Ping,
    "rejected_ping": RejectedPing,
    "vehicle_state": VehicleState,
    "stop_event": StopEvent,
    "prediction_set": PredictionSet,
}
_KIND_OF: Final[dict[type[Any], str]] = {cls: kind for kind, cls in _KINDS.items()}
_STOP_FIELDS: Final = tuple(f.name for f in dataclasses.fields(StopPrediction))
M = TypeVar("M", Ping, RejectedPing, VehicleState, StopEvent, PredictionSet)


def to_dict(message: Message) -> dict[str, Any]:
    """The JSON-ready dict of a message, with its schema version and kind."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "type": _KIND_OF[type(message)]}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if f.name == "stops":
            # A shallow dict per stop: StopPrediction's fields are all scalars, and dataclasses.asdict's
            # recursive deep copy was most of the ETA worker's time at 10,000 pings/s.
            value = [{name: getattr(s, name) for name in _STOP_FIELDS} for s in value]
        body[f.name] = value
    return body


def encode(message: Message) -> bytes:
    return json.dumps(to_dict(message), separators=(",", ":"), ensure_ascii=False).encode()


def from_dict(body: dict[str, Any]) -> Message:
    version = body.get("v")
    if version != SCHEMA_VERSION:
        raise ValidationError("unsupported schema version", "v", version)
    kind = body.get("type")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValidationError("unknown message type", "type", kind)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in body.items() if k in names}
    if cls is PredictionSet:
        kwargs["stops"] = tuple(StopPrediction(**s) for s in kwargs.get("stops", ()))
    try:
        return cls(**kwargs)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ValidationError(f"malformed {kind} message: {exc}") from exc


def decode(raw: bytes | str) -> Message:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError("message is not a JSON object")
    return from_dict(body)


def decode_as(raw: bytes | str, cls: type[M]) -> M:
    message = decode(raw)
    if not isinstance(message, cls):
        raise ValidationError(f"expected {cls.__name__}", "type", type(message).__name__)
    return message
