"""Validation and normalisation of incoming pings.

Every rejection carries a short machine-readable reason (counted by reason in metrics, stored with the
original payload) and a sentence naming the field and the value. Nothing here raises anything else:
a hostile payload can cost a rejection, never a crashed worker.
"""

from __future__ import annotations

import math
from typing import Any, Final

from smartbus.errors import ValidationError
from smartbus.messages import READABLE_VERSIONS, SCHEMA_VERSION, Ping, parse_json

MAX_ID_LENGTH: Final = 128
# Fastest plausible bus, m/s (about 200 km/h): anything above is a broken speed reading.
MAX_SPEED_MPS: Final = 55.0


class PingRejected(ValidationError):
    def __init__(self, reason: str, detail: str, field: str | None = None, value: object = None) -> None:
        super().__init__(detail, field, value)
        self.code = reason
        self.detail = detail


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise PingRejected(f"missing_{name}", f"{name} is required", name, value)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PingRejected(f"bad_{name}", f"{name} must be a string", name, value)
    text = str(value).strip()
    if not text or len(text) > MAX_ID_LENGTH or not text.isprintable():
        raise PingRejected(f"bad_{name}", f"{name} must be 1-{MAX_ID_LENGTH} printable characters", name, value)
    return text


def _number(body: dict[str, Any], name: str, *, required: bool = False) -> float | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise PingRejected(f"missing_{name}", f"{name} is required", name, value)
        return None
    if isinstance(value, bool):
        raise PingRejected(f"bad_{name}", f"{name} must be a number", name, value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PingRejected(f"bad_{name}", f"{name} must be a number", name, value) from None
    if not math.isfinite(number):
        raise PingRejected(f"bad_{name}", f"{name} must be finite", name, value)
    return number


def ping_from_fields(
    body: dict[str, Any],
    *,
    received_at: float | None = None,
    now: float | None = None,
    max_future_s: float = 300.0,
    max_age_s: float = 24 * 3600.0,
) -> Ping:
    """Build a valid Ping from a dict of GTFS-rt-named fields, or raise PingRejected.

    `now` is the validating clock: when given, timestamps more than `max_future_s` ahead of it or
    `max_age_s` behind it are rejected (the edge checks this; replays of old files pass now=None).
    """
    vehicle_id = _text(body, "vehicle_id", required=True)
    assert vehicle_id is not None
    timestamp = _number(body, "timestamp", required=True)
    latitude = _number(body, "latitude", required=True)
    longitude = _number(body, "longitude", required=True)
    assert timestamp is not None and latitude is not None and longitude is not None
    if not -90.0 <= latitude <= 90.0:
        raise PingRejected("latitude_out_of_range", "latitude must be within [-90, 90]", "latitude", latitude)
    if not -180.0 <= longitude <= 180.0:
        raise PingRejected("longitude_out_of_range", "longitude must be within [-180, 180]", "longitude", longitude)
    if abs(latitude) < 1e-6 and abs(longitude) < 1e-6:
        raise PingRejected("null_island", "position 0,0 is a GPS without a fix", "latitude", latitude)
    if timestamp <= 0:
        raise PingRejected("bad_timestamp", "timestamp must be positive UTC epoch seconds", "timestamp", timestamp)
    if now is not None:
        if timestamp > now + max_future_s:
            ahead = f"timestamp is {timestamp - now:.0f} s ahead of the clock"
            raise PingRejected("timestamp_in_future", ahead, "timestamp", timestamp)
        if timestamp < now - max_age_s:
            raise PingRejected("timestamp_too_old", f"timestamp is {now - timestamp:.0f} s old", "timestamp", timestamp)
    speed = _number(body, "speed")
    if speed is not None and not 0.0 <= speed <= MAX_SPEED_MPS:
        raise PingRejected("bad_speed", f"speed must be within [0, {MAX_SPEED_MPS}] m/s", "speed", speed)
    bearing = _number(body, "bearing")
    if bearing is not None:
        if not -360.0 <= bearing <= 720.0:
            raise PingRejected("bad_bearing", "bearing must be degrees", "bearing", bearing)
        bearing %= 360.0
    direction = _number(body, "direction_id")
    if direction is not None and direction not in (0.0, 1.0):
        raise PingRejected("bad_direction_id", "direction_id must be 0 or 1", "direction_id", direction)
    start_date = _text(body, "start_date")
    if start_date is not None and not (len(start_date) == 8 and start_date.isdigit()):
        raise PingRejected("bad_start_date", "start_date must be YYYYMMDD", "start_date", start_date)
    return Ping(
        vehicle_id=vehicle_id,
        timestamp=timestamp,
        latitude=latitude,
        longitude=longitude,
        bearing=bearing,
        speed=speed,
        trip_id=_text(body, "trip_id"),
        route_id=_text(body, "route_id"),
        direction_id=int(direction) if direction is not None else None,
        start_date=start_date,
        start_time=_text(body, "start_time"),
        received_at=received_at if received_at is not None else _number(body, "received_at"),
    )


def ping_from_message(raw: bytes, *, now: float | None = None) -> Ping:
    """Decode and validate one `pings` bus message (the JSON of `smartbus.messages.encode(Ping)`)."""
    try:
        body = parse_json(raw)
    except (ValueError, UnicodeDecodeError):
        raise PingRejected("malformed_json", "payload is not valid JSON") from None
    if not isinstance(body, dict):
        raise PingRejected("not_an_object", "payload must be a JSON object")
    version = body.get("v", SCHEMA_VERSION)
    if version not in READABLE_VERSIONS:  # a ping reads the same in every version
        versions = " or ".join(str(v) for v in sorted(READABLE_VERSIONS))
        raise PingRejected("schema_version", f"schema version must be {versions}", "v", version)
    kind = body.get("type", "ping")
    if kind != "ping":
        raise PingRejected("wrong_type", "message type must be ping", "type", kind)
    return ping_from_fields(body, now=now)
