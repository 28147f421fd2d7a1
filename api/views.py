"""What the api sends: vehicles, arrivals, stops and routes as JSON-ready dicts, enriched from the network."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from eta.network import Network, Route, Stop
from smartbus.live import Arrival
from smartbus.messages import VehicleState

_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(VehicleState))


class Views:
    def __init__(self, network: Network) -> None:
        self._network = network

    def vehicle(self, state: VehicleState | dict[str, Any]) -> dict[str, Any]:
        """A vehicle as clients see it; accepts a VehicleState or its messages.to_dict form."""
        body = dataclasses.asdict(state) if isinstance(state, VehicleState) else state
        view = {name: body.get(name) for name in _STATE_FIELDS}
        route = self._network.routes.get(view["route_id"] or "")
        trip = self._network.trips.get(view["trip_id"] or "")
        view["route_short_name"] = route.short_name if route else None
        view["route_color"] = _color(route)
        view["headsign"] = trip.headsign if trip else None
        return view

    def arrival(self, arrival: Arrival) -> dict[str, Any]:
        view = arrival.to_dict()
        route = self._network.routes.get(arrival.route_id or "")
        trip = self._network.trips.get(arrival.trip_id)
        if route is None and trip is not None:
            route = self._network.routes.get(trip.route_id)
        view["route_short_name"] = route.short_name if route else None
        view["route_color"] = _color(route)
        view["headsign"] = trip.headsign if trip else None
        view["live"] = arrival.method != "schedule"  # schedule only: no vehicle data behind the time
        return view

    def stop(self, stop: Stop) -> dict[str, Any]:
        return {
            "stop_id": stop.stop_id,
            "name": stop.name,
            "lat": stop.lat,
            "lon": stop.lon,
            "wheelchair_boarding": stop.wheelchair_boarding,
        }

    def route(self, route: Route) -> dict[str, Any]:
        return {
            "route_id": route.route_id,
            "short_name": route.short_name,
            "long_name": route.long_name,
            "route_type": route.route_type,
            "color": _color(route),
            "agency_id": route.agency_id,
        }

    def routes_geojson(self) -> dict[str, Any]:
        """One MultiLineString feature per route: the distinct shapes its trips run on."""
        shapes_of: dict[str, set[str]] = {}
        for trip in self._network.trips.values():
            shapes_of.setdefault(trip.route_id, set()).add(trip.shape_id)
        features = []
        for route_id in sorted(shapes_of):
            route = self._network.routes.get(route_id)
            lines = []
            for shape_id in sorted(shapes_of[route_id]):
                shape = self._network.shapes.get(shape_id)
                if shape is not None and len(shape.lat) >= 2:
                    points = zip(shape.lon.tolist(), shape.lat.tolist(), strict=True)
                    lines.append([[round(lon, 6), round(lat, 6)] for lon, lat in points])
            if not lines:
                continue
            properties = self.route(route) if route else {"route_id": route_id}
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "MultiLineString", "coordinates": lines},
                    "properties": properties,
                }
            )
        return {"type": "FeatureCollection", "features": features}

    def stops_geojson(self) -> dict[str, Any]:
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [stop.lon, stop.lat]},
                "properties": {"stop_id": stop.stop_id, "name": stop.name},
            }
            for stop in self._network.stops.values()
            if math.isfinite(stop.lat) and math.isfinite(stop.lon)
        ]
        return {"type": "FeatureCollection", "features": features}


def _color(route: Route | None) -> str | None:
    if route is None or not route.color:
        return None
    return "#" + route.color.lstrip("#")
