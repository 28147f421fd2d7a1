"""Every message that crosses the bus (Kafka or the in-process bus), versioned.

Units: times are UTC epoch seconds (float), distances metres, speeds m/s, bearings degrees
clockwise from north. `service_date` is the GTFS service day as a YYYYMMDD string.

Wire format: one JSON object per message, `{"v": SCHEMA_VERSION, "type": <kind>, ...fields}`.
Everyone encodes and decodes through `encode` / `decode` here, so a schema change happens in one place.

Version 2 sends a prediction set's stops grouped by trip, each stop a row of values in `_STOP_ROW` order:
`"trips": [{"trip_id", "service_date", "route_id", "stops": [[stop_id, stop_sequence, predicted_arrival,
scheduled_arrival, method, uncertainty_s], ...]}]` (version 1 repeated every key and trip field per stop,
five times the bytes, most of the ETA worker's encoding and the writers' decoding). Every other message
is the same in both versions; version 1 messages are still read, so workers can be upgraded one by one.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple, TypeVar

import orjson

from smartbus.errors import ValidationError

SCHEMA_VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({1, 2})

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

_Record = TypeVar("_Record")


def _slot_setting_init(cls: type[_Record]) -> type[_Record]:
    """Give a frozen slots dataclass an __init__ that sets each slot through the slot's own descriptor.

    The __init__ dataclass writes for a frozen class sets each field through object.__setattr__, twice as slow
    (1.07 us against 0.54 us for a VehicleState, timeit on this machine): the ETA worker builds a state, and often
    a stop event, for every ping, and reading a ping builds one. Same parameters, defaults and result; the
    instance is as frozen as before (its __setattr__ still refuses), pickling and dataclasses.replace unchanged.
    """
    names, params, namespace = [], [], {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a default factory needs dataclass's own __init__")
        names.append(f.name)
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            params.append(f"{f.name}=_default_{f.name}")
            namespace[f"_default_{f.name}"] = f.default
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names)
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", namespace)  # as dataclass itself builds __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


VehicleStatus = Literal["in_transit", "at_stop", "layover", "off_route", "stale", "unassigned"]
PredictionMethod = Literal["schedule", "schedule_delay", "history", "recent", "blend", "block_next"]


@_slot_setting_init
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


@_slot_setting_init
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


@_slot_setting_init
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


class StopPrediction(NamedTuple):
    """Predicted arrival of one trip at one stop.

    A named tuple rather than a frozen dataclass like the other messages: every ping makes some 25 of them, in
    the ETA worker and again in each writer that decodes its prediction set, and a frozen dataclass takes six
    times as long to build (its __init__ sets each field through object.__setattr__)."""

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


class EncodedState(NamedTuple):
    """A vehicle_state message still in the bytes the bus carried it in, with what a live store keys it by. The live
    writer hands these bytes on to Redis as they are: decoding every state and encoding it again was a tenth of the
    pipeline's CPU at 10,000 pings/s."""

    vehicle_id: str
    timestamp: float
    raw: bytes


Message = Ping | RejectedPing | VehicleState | StopEvent | PredictionSet
_KINDS: Final[dict[str, type[Any]]] = {
    "ping": Ping,
    "rejected_ping": RejectedPing,
    "vehicle_state": VehicleState,
    "stop_event": StopEvent,
    "prediction_set": PredictionSet,
}
_KIND_OF: Final[dict[type[Any], str]] = {cls: kind for kind, cls in _KINDS.items()}
_STOP_FIELDS: Final = StopPrediction._fields
_TRIP_FIELDS: Final = ("trip_id", "service_date", "route_id")  # shared by a trip's stops
_STOP_ROW: Final = ("stop_id", "stop_sequence", "predicted_arrival", "scheduled_arrival", "method", "uncertainty_s")
if _STOP_FIELDS != ("trip_id", "service_date", *_STOP_ROW, "route_id"):  # the order _prediction_set_dict unpacks
    raise ImportError("StopPrediction changed its fields: update the prediction_set wire format")
M = TypeVar("M", Ping, RejectedPing, VehicleState, StopEvent, PredictionSet)


_FIELDS_OF: Final[dict[type[Any], tuple[str, ...]]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _KINDS.values()
}


class _FieldType(NamedTuple):
    """What a field of a message may hold on the wire, read off its annotation."""

    accepted: frozenset[type]  # the exact types of the JSON values it takes: a float field takes an int, but no bool
    choices: frozenset[str] | None  # a Literal's values


def _field_type(annotation: Any) -> _FieldType | None:
    """None for what decoding checks on its own (a prediction set's stops)."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        found = _field_type(inner)
        return found._replace(accepted=found.accepted | {type(None)}) if found is not None else None
    if typing.get_origin(annotation) is Literal:
        return _FieldType(frozenset({str}), frozenset(args))
    if annotation is float:
        return _FieldType(frozenset({int, float}), None)
    if annotation in (str, int, bool):
        return _FieldType(frozenset({annotation}), None)
    return None


# Each message's fields and what they may hold, so that a message that decodes is what its class says: a string
# for a latitude, or null for a vehicle id, would otherwise reach the stores and make them fail there (a batch
# retried for ever) or, worse, store nonsense.
_FIELD_TYPES: Final[dict[type[Any], dict[str, _FieldType | None]]] = {
    cls: {name: _field_type(hint) for name, hint in typing.get_type_hints(cls).items()} for cls in _KINDS.values()
}
# The same, as decoding checks it: the accepted types of each field (None: checked on its own), and the fields
# that take only some strings. One set lookup a field: a state is checked in each writer, 10,000 a second.
_ACCEPTED_OF: Final[dict[type[Any], dict[str, frozenset[type] | None]]] = {
    cls: {name: None if kind is None else kind.accepted for name, kind in fields.items()}
    for cls, fields in _FIELD_TYPES.items()
}
_CHOICES_OF: Final[dict[type[Any], tuple[tuple[str, frozenset[str]], ...]]] = {
    cls: tuple((name, kind.choices) for name, kind in fields.items() if kind is not None and kind.choices)
    for cls, fields in _FIELD_TYPES.items()
}
# what _ACCEPTED_OF gives a key that is no field (v, type, one a newer worker added): a set of its own, told apart
# by identity (the empty frozenset is shared)
_NOT_A_FIELD: Final[frozenset[type]] = frozenset({type(NotImplemented)})
_NUMBER: Final = frozenset({int, float})
_METHODS: Final = frozenset(typing.get_args(PredictionMethod))
_STOP_FIELD_TYPES: Final[dict[str, _FieldType]] = {
    name: found for name, hint in typing.get_type_hints(StopPrediction).items()
    if (found := _field_type(hint)) is not None
}


def to_dict(message: Message) -> dict[str, Any]:
    """The JSON-ready dict of a message, with its schema version and kind."""
    if isinstance(message, PredictionSet):
        return _prediction_set_dict(message)
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "type": _KIND_OF[type(message)]}
    for name in _FIELDS_OF[type(message)]:
        body[name] = getattr(message, name)
    return body


def _prediction_set_dict(message: PredictionSet) -> dict[str, Any]:
    trips: list[dict[str, Any]] = []
    rows: list[list[Any]] | None = None
    trip_id = service_date = route_id = None
    # each stop unpacked in its fields' order (a tuple; checked with the row layout above): once per stop of every
    # set the ETA worker publishes
    for stop_trip, stop_date, stop_id, sequence, predicted, scheduled, method, uncertainty, stop_route in message.stops:
        if rows is None or stop_trip != trip_id or stop_date != service_date or stop_route != route_id:
            trip_id, service_date, route_id, rows = stop_trip, stop_date, stop_route, []
            trips.append({"trip_id": trip_id, "service_date": service_date, "route_id": route_id, "stops": rows})
        rows.append([stop_id, sequence, predicted, scheduled, method, uncertainty])
    return {
        "v": SCHEMA_VERSION,
        "type": "prediction_set",
        "vehicle_id": message.vehicle_id,
        "made_at": message.made_at,
        "trips": trips,
        "feed_version": message.feed_version,
    }


def _stops_from(body: dict[str, Any]) -> tuple[StopPrediction, ...]:
    if "trips" not in body:  # version 1: a dict per stop
        stops = tuple(StopPrediction(**s) for s in body.get("stops", ()))
        for stop in stops:
            _check_stop(stop)
        return stops
    built: list[StopPrediction] = []
    for trip in body["trips"]:
        trip_id, service_date, route_id = trip["trip_id"], trip["service_date"], trip.get("route_id")
        if not (type(trip_id) is str and type(service_date) is str and (route_id is None or type(route_id) is str)):
            raise ValidationError(
                "malformed prediction_set message: a trip's trip_id, service_date or route_id is not a string"
            )
        for stop_id, sequence, predicted, scheduled, method, uncertainty in trip["stops"]:
            stop = StopPrediction(trip_id, service_date, stop_id, sequence, predicted, scheduled, method, uncertainty,
                                  route_id)
            # each field checked in one expression (a set of some 25 stops is decoded in each writer); the slow way
            # finds which one is wrong
            if not (
                type(stop_id) is str and type(sequence) is int and type(predicted) in _NUMBER
                and (scheduled is None or type(scheduled) in _NUMBER) and type(method) is str
                and method in _METHODS and type(uncertainty) in _NUMBER
            ):
                _check_stop(stop)
            built.append(stop)
    return tuple(built)


def _check_stop(stop: StopPrediction) -> None:
    for name, value in zip(_STOP_FIELDS, stop, strict=True):
        expected = _STOP_FIELD_TYPES[name]
        if not _holds(expected, value):
            raise _malformed("stop prediction", name, value, expected)


# What to_dict puts before a dataclass message's fields: encode writes the fields with orjson's own dataclass
# serialisation (in field order, as to_dict) after it.
_HEADER: Final[dict[type[Any], bytes]] = {
    cls: b'{"v":%d,"type":"%s",' % (SCHEMA_VERSION, kind.encode()) for kind, cls in _KINDS.items()
}


def encode(message: Message) -> bytes:
    """`to_dict` as compact UTF-8 JSON: the JSON json.dumps(separators=(",", ":"), ensure_ascii=False) writes, but
    that a float that is not finite (never in a valid message) becomes null, as JSON has no NaN, and that some
    floats are spelt otherwise (orjson writes 1e-05 as 0.00001; json reads both as the same number).

    orjson serialises a slots dataclass itself, without to_dict's dict (1.3 us for a VehicleState). Its output
    is a 1 KiB buffer cut down to size; the header joined to it is a fresh object of the exact size, and the
    buffer is freed at once. That matters more than it seems: a batch keeps thousands of encoded messages, and
    with as many cut-down buffers held, each orjson.dumps took 3.5 us more (scratch timeit, this machine):
    encoding a state in a batch of 2,000 takes 1.1 us this way against 4.9 us before."""
    if isinstance(message, PredictionSet):
        return orjson.dumps(_prediction_set_dict(message))
    return _HEADER[type(message)] + orjson.dumps(message)[1:]


def from_dict(body: dict[str, Any]) -> Message:
    version = body.get("v")
    if version not in READABLE_VERSIONS:
        raise ValidationError("unsupported schema version", "v", version)
    kind = body.get("type")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValidationError("unknown message type", "type", kind)
    kwargs = _checked_fields(str(kind), cls, body)
    try:
        if cls is PredictionSet:
            kwargs["stops"] = _stops_from(body)
        return cls(**kwargs)  # type: ignore[no-any-return]
    except (TypeError, ValueError, KeyError) as exc:
        raise ValidationError(f"malformed {kind} message: {exc!r}") from exc


def _checked_fields(kind: str, cls: type[Any], body: dict[str, Any]) -> dict[str, Any]:
    """The fields of `cls` in `body` (other keys are ignored: a newer worker may add some), each checked against its
    annotation."""
    accepted_of = _ACCEPTED_OF[cls]
    kwargs: dict[str, Any] = {}
    for name, value in body.items():
        accepted = accepted_of.get(name, _NOT_A_FIELD)
        if accepted is _NOT_A_FIELD:
            continue
        if accepted is not None and type(value) not in accepted:
            raise _malformed(f"{kind} message", name, value, _FIELD_TYPES[cls][name])
        kwargs[name] = value
    _check_choices(kind, cls, kwargs)
    return kwargs


def _check_choices(kind: str, cls: type[Any], fields: dict[str, Any]) -> None:
    """The fields that take only some strings (their types checked already) hold one of them."""
    for name, choices in _CHOICES_OF[cls]:
        value = fields.get(name)
        if value is not None and value not in choices:
            raise _malformed(f"{kind} message", name, value, _FIELD_TYPES[cls][name])


def _holds(expected: _FieldType, value: object) -> bool:
    return type(value) in expected.accepted and (value is None or expected.choices is None or value in expected.choices)


def _malformed(kind: str, name: str, value: object, expected: _FieldType | None) -> ValidationError:
    if expected is None:
        return ValidationError(f"malformed {kind}: {name} {value!r}", name, value)
    what = " or ".join(sorted(expected.choices)) if expected.choices else " or ".join(
        sorted("null" if t is type(None) else t.__name__ for t in expected.accepted)
    )
    return ValidationError(f"malformed {kind}: {name} {value!r} is not {what}", name, value)


def parse_json(raw: bytes | str) -> Any:
    """The JSON value of `raw` at orjson's speed, as `json.loads` reads it (ValueError if it is not JSON), but for an
    integer beyond 64 bits, which comes back as a float (no field of ours holds one)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # what orjson refuses and Python's json reads (NaN and Infinity, which a worker encoding with json.dumps
        # wrote for a float that was not finite) is read as before: no message an older worker wrote is dropped
        return json.loads(raw)


def _json_object(raw: bytes | str) -> dict[str, Any]:
    try:
        body = parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError("message is not a JSON object")
    return body


def decode(raw: bytes | str) -> Message:
    return from_dict(_json_object(raw))


_STATE_REQUIRED: Final = tuple(
    f.name for f in dataclasses.fields(VehicleState) if f.default is dataclasses.MISSING
)


def decode_keeping_states(raw: bytes) -> Message | EncodedState:
    """`decode`, but a vehicle_state comes back as an EncodedState of `raw`, checked as `decode` checks it (schema
    version, type, the fields without defaults present, each field's type): the readers of the live store decode
    what it holds."""
    body = _json_object(raw)
    if body.get("type") != "vehicle_state" or body.get("v") not in READABLE_VERSIONS:
        return from_dict(body)
    for name in _STATE_REQUIRED:
        if name not in body:
            raise ValidationError(f"malformed vehicle_state message: no {name}")
    accepted_of = _ACCEPTED_OF[VehicleState]
    for name, value in body.items():  # _checked_fields' checks, without gathering arguments for a class not built
        accepted = accepted_of.get(name, _NOT_A_FIELD)
        if accepted is not _NOT_A_FIELD and accepted is not None and type(value) not in accepted:
            raise _malformed("vehicle_state message", name, value, _FIELD_TYPES[VehicleState][name])
    _check_choices("vehicle_state", VehicleState, body)
    return EncodedState(body["vehicle_id"], float(body["timestamp"]), raw)


def decode_as(raw: bytes | str, cls: type[M]) -> M:
    message = decode(raw)
    if not isinstance(message, cls):
        raise ValidationError(f"expected {cls.__name__}", "type", type(message).__name__)
    return message
