"""The fleet map's problems panel: bunching, gaps, stale and off-route buses."""

from __future__ import annotations

from starlette.testclient import TestClient

from api.problems import fleet_problems
from eta.network import Network
from smartbus.live.memory_store import MemoryLiveStore
from smartbus.messages import VehicleState
from tests.api.conftest import NOW

TRIP = "CNS2014-CNS_MUL-Saturday-00-4165937"


def bus(vehicle_id: str, dist: float, **fields: object) -> VehicleState:
    values: dict[str, object] = {"timestamp": NOW - 10, "status": "in_transit", "trip_id": TRIP, "route_id": "110-423"}
    values.update(fields)
    return VehicleState(vehicle_id=vehicle_id, latitude=-16.9, longitude=145.7, shape_dist=dist, **values)  # type: ignore[arg-type]


def test_bunched_buses_gaps_stale_and_off_route_are_each_reported(network: Network) -> None:
    states = [
        bus("A", 1000),
        bus("B", 1100),  # bunched: 100 m apart
        bus("C", 4000),
        bus("D", 7000),  # regular spacing of 3 km
        bus("E", 20000),  # 13 km behind D's lead: a gap
        bus("S", 500, timestamp=NOW - 900),
        bus("O", 600, status="off_route", offset_m=420.0),
    ]
    found = {(p.kind, p.vehicle_ids) for p in fleet_problems(states, network, NOW)}
    assert found == {
        ("bunching", ("A", "B")),
        ("gap", ("D", "E")),
        ("stale", ("S",)),
        ("off_route", ("O",)),
    }


def test_a_quiet_fleet_has_no_problems(network: Network) -> None:
    assert fleet_problems([bus("A", 1000), bus("B", 4000), bus("C", 7000)], network, NOW) == []


def test_problems_endpoint(client: TestClient, live: MemoryLiveStore) -> None:
    client.portal.call(live.put_states, [bus("A", 1000), bus("B", 1050)])  # type: ignore[union-attr]
    [problem] = client.get("/api/fleet/problems").json()["problems"]
    assert problem["kind"] == "bunching" and problem["vehicle_ids"] == ["A", "B"]
