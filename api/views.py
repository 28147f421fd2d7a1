"""What the api sends: vehicles, arrivals, stops and routes as JSON-ready dicts, enriched from the network.

Names (stops, routes, headsigns, agencies) come in the client's languages where the feed translates them
(`languages`, from api.languages), else in the feed's own text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, Final

from api.languages import Preference, localized
from eta.network import Agency, Network, Route, Shape, Stop, Trip
from smartbus.live import Arrival
from smartbus.live.notices import SkippedStops, TripCancellation
from smartbus.messages import VehicleState

_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(VehicleState))
# A cancelled trip stays on a board from its scheduled time this far back, to this far ahead (seconds).
CANCELLED_SHOWN_FROM_S: Final = -120.0
CANCELLED_SHOWN_UNTIL_S: Final = 2 * 3600.0


class Views:
    def __init__(self, network: Network) -> None:
        self._network = network
        self._route_lines: list[tuple[str, list[list[list[float]]]]] | None = None

    def vehicle(self, state: VehicleState | dict[str, Any], languages: Preference = ()) -> dict[str, Any]:
        """A vehicle as clients see it; accepts a VehicleState or its messages.to_dict form."""
        body = dataclasses.asdict(state) if isinstance(state, VehicleState) else state
        view = {name: body.get(name) for name in _STATE_FIELDS}
        route = self._network.routes.get(view["route_id"] or "")
        trip = self._network.trips.get(view["trip_id"] or "")
        view["route_short_name"] = _short_name(route, languages)
        view["route_color"] = _color(route)
        view["headsign"] = localized(trip.headsign, trip.headsign_translations, languages) if trip else None
        return view

    def arrival(self, arrival: Arrival, languages: Preference = ()) -> dict[str, Any]:
        view = arrival.to_dict()
        route = self._network.routes.get(arrival.route_id or "")
        trip = self._network.trips.get(arrival.trip_id)
        if route is None and trip is not None:
            route = self._network.routes.get(trip.route_id)
        view["route_short_name"] = _short_name(route, languages)
        view["route_color"] = _color(route)
        view["headsign"] = localized(trip.headsign, trip.headsign_translations, languages) if trip else None
        view["live"] = arrival.method != "schedule"  # schedule only: no vehicle data behind the time
        view["vehicle_id"] = arrival.vehicle_id or None  # the timetable's rows have no vehicle
        view["wheelchair_accessible"] = trip.wheelchair_accessible == 1 if trip else None
        view["cancelled"] = False
        view["skipped"] = False
        return view

    def board(
        self,
        stop_id: str,
        arrivals: Sequence[Arrival],
        cancellations: Sequence[TripCancellation],
        skips: Sequence[SkippedStops],
        now: float,
        languages: Preference = (),
    ) -> list[dict[str, Any]]:
        """A stop's board: predicted arrivals, marked when the trip is cancelled or skips this stop,
        plus cancelled trips due here soon that no vehicle predicts (a rider should know the bus is not coming)."""
        cancelled = {(c.trip_id, c.service_date) for c in cancellations}
        skipping = {(s.trip_id, s.service_date) for s in skips if stop_id in s.stop_ids}
        rows = []
        for arrival in arrivals:
            view = self.arrival(arrival, languages)
            key = (arrival.trip_id, arrival.service_date)
            view["cancelled"] = key in cancelled
            view["skipped"] = key in skipping
            rows.append(view)
        on_board = {(a.trip_id, a.service_date) for a in arrivals}
        for trip_id, service_date in sorted(cancelled - on_board):
            scheduled = self._scheduled_arrival(trip_id, service_date, stop_id)
            if scheduled is None or not (CANCELLED_SHOWN_FROM_S <= scheduled - now <= CANCELLED_SHOWN_UNTIL_S):
                continue
            rows.append(self._cancelled_row(trip_id, service_date, stop_id, scheduled, languages))
        rows.sort(key=lambda r: (r["predicted_arrival"], r["trip_id"]))
        return rows

    def _scheduled_arrival(self, trip_id: str, service_date: str, stop_id: str) -> float | None:
        trip = self._network.trips.get(trip_id)
        if trip is None or stop_id not in trip.stop_ids:
            return None
        try:
            day = dt.datetime.strptime(service_date, "%Y%m%d").date()  # noqa: DTZ007  # a calendar date, no time
        except ValueError:
            return None
        index = trip.stop_ids.index(stop_id)
        return self._network.service_day_origin(day) + float(trip.arrival[index])

    def _cancelled_row(
        self, trip_id: str, service_date: str, stop_id: str, scheduled: float, languages: Preference
    ) -> dict[str, Any]:
        trip = self._network.trips[trip_id]
        route = self._network.routes.get(trip.route_id)
        index = trip.stop_ids.index(stop_id)
        return {
            "stop_id": stop_id,
            "trip_id": trip_id,
            "service_date": service_date,
            "route_id": trip.route_id,
            "vehicle_id": None,
            "stop_sequence": int(trip.stop_sequences[index]),
            "scheduled_arrival": scheduled,
            "predicted_arrival": scheduled,
            "method": "schedule",
            "uncertainty_s": 0.0,
            "updated_at": None,
            "route_short_name": _short_name(route, languages),
            "route_color": _color(route),
            "headsign": localized(trip.headsign, trip.headsign_translations, languages),
            "live": False,
            "wheelchair_accessible": trip.wheelchair_accessible == 1,
            "cancelled": True,
            "skipped": False,
        }

    def stop(self, stop: Stop, languages: Preference = ()) -> dict[str, Any]:
        return {
            "stop_id": stop.stop_id,
            "name": localized(stop.name, stop.name_translations, languages),
            "lat": stop.lat,
            "lon": stop.lon,
            "wheelchair_boarding": stop.wheelchair_boarding,
        }

    def route(self, route: Route, languages: Preference = ()) -> dict[str, Any]:
        agency = self._network.agencies.get(route.agency_id or "")
        if agency is None and len(self._network.agencies) == 1:
            agency = next(iter(self._network.agencies.values()))  # a feed's one agency needs no agency_id
        return {
            "route_id": route.route_id,
            "short_name": _short_name(route, languages),
            "long_name": localized(route.long_name, route.long_name_translations, languages),
            "route_type": route.route_type,
            "color": _color(route),
            "agency_id": route.agency_id,
            "agency_name": localized(agency.name, agency.name_translations, languages) if agency else None,
        }

    def agency(self, agency: Agency, languages: Preference = ()) -> dict[str, Any]:
        return {
            "agency_id": agency.agency_id,
            "name": localized(agency.name, agency.name_translations, languages),
            "timezone": self._network.agency_timezone,  # one per feed (GTFS requires the agencies to agree)
        }

    def trip(self, trip: Trip, languages: Preference = ()) -> dict[str, Any]:
        """A trip without its stop times: what a list of a route's trips shows."""
        return {
            "trip_id": trip.trip_id,
            "route_id": trip.route_id,
            "service_id": trip.service_id,
            "direction_id": trip.direction_id,
            "block_id": trip.block_id,
            "shape_id": trip.shape_id,
            "headsign": localized(trip.headsign, trip.headsign_translations, languages),
            "wheelchair_accessible": trip.wheelchair_accessible,
            "start_time": gtfs_time(float(trip.departure[0])),
            "end_time": gtfs_time(float(trip.arrival[-1])),
        }

    def stop_times(
        self, trip: Trip, languages: Preference = (), day_origin: float | None = None
    ) -> list[dict[str, Any]]:
        """The trip's stops in order with their scheduled times: GTFS clock times, and UTC epoch seconds when the
        service day is known (`day_origin`, from Network.service_day_origin)."""
        rows = []
        for index, stop_id in enumerate(trip.stop_ids):
            stop = self._network.stops.get(stop_id)
            arrival, departure = float(trip.arrival[index]), float(trip.departure[index])
            row: dict[str, Any] = {
                "stop_id": stop_id,
                "stop_sequence": int(trip.stop_sequences[index]),
                "stop_name": localized(stop.name, stop.name_translations, languages) if stop else None,
                "arrival_time": gtfs_time(arrival),
                "departure_time": gtfs_time(departure),
                "timepoint": bool(trip.timepoint[index]),  # False: the feed left it blank, interpolated by distance
                "shape_dist_m": round(float(trip.stop_dist[index]), 1),
            }
            if day_origin is not None:
                row["scheduled_arrival"] = day_origin + arrival
                row["scheduled_departure"] = day_origin + departure
            rows.append(row)
        return rows

    def route_patterns(self, route_id: str, languages: Preference = ()) -> list[dict[str, Any]]:
        """Per direction, the stops most of the route's trips call at (the longest such pattern on a tie)."""
        counts: dict[int | None, dict[tuple[str, ...], list[Trip]]] = {}
        for trip in self._network.trips.values():
            if trip.route_id == route_id:
                counts.setdefault(trip.direction_id, {}).setdefault(trip.stop_ids, []).append(trip)
        patterns = []
        for direction_id in sorted(counts, key=lambda d: -1 if d is None else d):
            by_pattern = counts[direction_id]
            stop_ids = max(by_pattern, key=lambda ids: (len(by_pattern[ids]), len(ids), ids))
            example = min(by_pattern[stop_ids], key=lambda t: t.trip_id)
            patterns.append(
                {
                    "direction_id": direction_id,
                    "headsign": localized(example.headsign, example.headsign_translations, languages),
                    "shape_id": example.shape_id,
                    "trip_count": len(by_pattern[stop_ids]),
                    "stops": [
                        self.stop(self._network.stops[i], languages) for i in stop_ids if i in self._network.stops
                    ],
                }
            )
        return patterns

    def shape_geojson(self, shape: Shape) -> dict[str, Any]:
        """The shape at full resolution, as the feed draws it."""
        return {
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [
                    [round(x, 7), round(y, 7)] for x, y in zip(shape.lon.tolist(), shape.lat.tolist(), strict=True)
                ],
            },
            "properties": {"shape_id": shape.shape_id, "length_m": round(shape.length, 1)},
        }

    def routes_geojson(self, languages: Preference = ()) -> dict[str, Any]:
        """One MultiLineString feature per route: the distinct shapes its trips run on."""
        features = []
        for route_id, lines in self._lines_by_route():
            route = self._network.routes.get(route_id)
            properties = self.route(route, languages) if route else {"route_id": route_id}
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "MultiLineString", "coordinates": lines},
                    "properties": properties,
                }
            )
        return {"type": "FeatureCollection", "features": features}

    def _lines_by_route(self) -> list[tuple[str, list[list[list[float]]]]]:
        """(route_id, its simplified shapes as [lon, lat] lines), worked out once: simplifying is the slow part."""
        if self._route_lines is None:
            shapes_of: dict[str, set[str]] = {}
            for trip in self._network.trips.values():
                shapes_of.setdefault(trip.route_id, set()).add(trip.shape_id)
            found = []
            for route_id in sorted(shapes_of):
                lines = []
                for shape_id in sorted(shapes_of[route_id]):
                    shape = self._network.shapes.get(shape_id)
                    if shape is not None and len(shape.lat) >= 2:
                        lines.append(_simplified(shape.lon.tolist(), shape.lat.tolist()))
                if lines:
                    found.append((route_id, lines))
            self._route_lines = found
        return self._route_lines

    def stops_geojson(self, languages: Preference = ()) -> dict[str, Any]:
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [stop.lon, stop.lat]},
                "properties": {
                    "stop_id": stop.stop_id,
                    "name": localized(stop.name, stop.name_translations, languages),
                },
            }
            for stop in self._network.stops.values()
            if math.isfinite(stop.lat) and math.isfinite(stop.lon)
        ]
        return {"type": "FeatureCollection", "features": features}


# About 3 m: invisible at street zoom, and shapes with GPS-traced vertices every metre shrink severalfold.
SIMPLIFY_TOLERANCE_DEG: Final = 3e-5


def _simplified(lon: list[float], lat: list[float]) -> list[list[float]]:
    from shapely.geometry import LineString

    line = LineString(list(zip(lon, lat, strict=True))).simplify(SIMPLIFY_TOLERANCE_DEG, preserve_topology=False)
    return [[round(x, 6), round(y, 6)] for x, y in line.coords]


def _short_name(route: Route | None, languages: Preference) -> str | None:
    return localized(route.short_name, route.short_name_translations, languages) if route else None


def _color(route: Route | None) -> str | None:
    if route is None or not route.color:
        return None
    return "#" + route.color.lstrip("#")


def gtfs_time(seconds: float) -> str:
    """Seconds of the service day as GTFS writes them: HH:MM:SS, hours past 24 for trips running past midnight."""
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
