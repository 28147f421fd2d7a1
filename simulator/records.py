"""What the simulator emits: pings with their delivery time, and the ground truth it hides from the tracker.

Times are UTC epoch seconds, distances metres.
"""

from __future__ import annotations

from typing import NamedTuple

from smartbus.messages import Ping


class PositionTruth(NamedTuple):
    """Where the bus really was when it took a fix that was sent (one row per fix, not per copy)."""

    vehicle_id: str
    timestamp: float
    trip_id: str
    latitude: float
    longitude: float
    shape_dist: float  # metres along the trip's shape
    delivered_at: float  # first copy
    faults: str  # ';'-joined: duplicate, late, out_of_order, zero, swapped, jump, missing_trip, wrong_trip


class Delivery(NamedTuple):
    """A ping as it reaches the system at `deliver_at` (delivery order need not be timestamp order)."""

    deliver_at: float
    ping: Ping
    truth: PositionTruth | None  # None on the second copy of a duplicate


class StopTruth(NamedTuple):
    """A stop a trip really reached: arrival and departure (equal when it drove past)."""

    vehicle_id: str
    trip_id: str
    service_date: str  # YYYYMMDD
    stop_id: str
    stop_sequence: int  # the feed's value
    arrival_time: float
    departure_time: float
    served: bool  # True = stopped, False = passed without stopping


Event = Delivery | StopTruth
