"""Compile a GTFS feed into a Network: projected shapes, stop distances along them, schedules in seconds."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from eta.network.alignment import cumulative_distance, stop_distances
from eta.network.calendar import ServiceCalendar, WeeklyService
from eta.network.feed_tables import floats, gtfs_seconds, line_of, optional_ints, read_tables, strings
from eta.network.language_tags import normalize_tag
from eta.network.model import Agency, Route, Shape, Stop, Trip
from eta.network.network import Network
from eta.network.projection import LocalProjection
from eta.network.translations import TranslationTable, read_translations
from smartbus.errors import FeedError

log = logging.getLogger(__name__)

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def compile_network(feed: Path, feed_hash: str) -> Network:
    tables = read_tables(feed)
    translations, warnings = read_translations(feed)
    timezone = _agency_timezone(tables["agency"])
    agencies = _agencies(tables["agency"], translations)
    stops = _stops(tables["stops"], translations)
    projection = _projection(stops)
    routes = _routes(tables["routes"], translations)
    shapes = _shapes(tables["shapes"], projection)
    calendar = _calendar(tables["calendar"], tables["calendar_dates"])
    trips = _trips(tables, stops, routes, shapes, projection, warnings, translations)
    if tables["frequencies"] is not None:
        trips = _expand_frequencies(tables["frequencies"], trips)
    warnings += translations.unknown_records(
        {
            "agency": agencies,
            "stops": stops,
            "routes": routes,
            "trips": (t for t in strings(tables["trips"], "trip_id") if t is not None),
        }
    )
    for text in warnings:
        log.warning("%s: %s", feed.name, text)
    return Network(
        feed_hash=feed_hash,
        agency_timezone=timezone,
        projection=projection,
        stops=stops,
        routes=routes,
        shapes=shapes,
        trips=trips,
        calendar=calendar,
        warnings=tuple(warnings),
        agencies=agencies,
        feed_language=_feed_language(tables["feed_info"], tables["agency"]),
        translation_languages=_translation_languages(agencies, stops, routes, trips),
    )


def _agency_timezone(agency: Any) -> str:
    zones = {z for z in strings(agency, "agency_timezone") if z}
    if len(zones) != 1:
        raise FeedError("agency.txt", f"expected one agency_timezone, found {sorted(zones)}")
    zone = zones.pop()
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(zone)
    except (KeyError, ValueError) as exc:
        raise FeedError("agency.txt", f"unknown agency_timezone {zone!r}") from exc
    return zone


def _agencies(frame: Any, translations: TranslationTable) -> dict[str, Agency]:
    agencies: dict[str, Agency] = {}
    for agency_id, name in zip(strings(frame, "agency_id"), strings(frame, "agency_name"), strict=True):
        key = agency_id or ""
        translated = translations.lookup("agency", "agency_name", agency_id, name)
        agencies.setdefault(key, Agency(key, name or key, translated))
    return agencies


def _feed_language(feed_info: Any, agency: Any) -> str | None:
    """feed_info's feed_lang, else the agencies' agency_lang when they agree; None for "mul" or unknown."""
    given = {t for t in strings(feed_info, "feed_lang") if t} if feed_info is not None else set()
    if not given:
        given = {t for t in strings(agency, "agency_lang") if t}
    tags = {normalize_tag(t) for t in given}
    if len(tags) != 1:
        return None
    tag = tags.pop()
    return None if tag == "mul" else tag


def _translation_languages(
    agencies: dict[str, Agency], stops: dict[str, Stop], routes: dict[str, Route], trips: dict[str, Trip]
) -> tuple[str, ...]:
    found: set[tuple[tuple[str, str], ...]] = set()
    found.update(a.name_translations for a in agencies.values())
    found.update(s.name_translations for s in stops.values())
    for route in routes.values():
        found.update((route.short_name_translations, route.long_name_translations))
    found.update(t.headsign_translations for t in trips.values())
    return tuple(sorted({language for translations in found for language, _ in translations}))


def _stops(frame: Any, translations: TranslationTable) -> dict[str, Stop]:
    lat = floats(frame, "stop_lat", "stops.txt")
    lon = floats(frame, "stop_lon", "stops.txt")
    bad = np.flatnonzero((np.abs(lat) > 90) | (np.abs(lon) > 180) | ((lat == 0) & (lon == 0)))
    if len(bad):
        raise FeedError("stops.txt", "stop_lat/stop_lon out of range", line_of(frame, bad[0]))
    stops: dict[str, Stop] = {}
    for i, (stop_id, name, wheelchair) in enumerate(
        zip(
            strings(frame, "stop_id"),
            strings(frame, "stop_name"),
            optional_ints(frame, "wheelchair_boarding"),
            strict=True,
        )
    ):
        assert stop_id is not None  # checked by read_tables
        if stop_id in stops:
            raise FeedError("stops.txt", f"duplicate stop_id {stop_id!r}", line_of(frame, i))
        translated = translations.lookup("stops", "stop_name", stop_id, name)
        stops[stop_id] = Stop(stop_id, name or stop_id, float(lat[i]), float(lon[i]), wheelchair, translated)
    return stops


def _projection(stops: dict[str, Stop]) -> LocalProjection:
    lats = np.array([s.lat for s in stops.values()])
    lons = np.array([s.lon for s in stops.values()])
    return LocalProjection((lats.min() + lats.max()) / 2, (lons.min() + lons.max()) / 2)


def _routes(frame: Any, translations: TranslationTable) -> dict[str, Route]:
    route_types = optional_ints(frame, "route_type")
    routes: dict[str, Route] = {}
    for i, (route_id, short, long_, color, agency) in enumerate(
        zip(
            strings(frame, "route_id"),
            strings(frame, "route_short_name"),
            strings(frame, "route_long_name"),
            strings(frame, "route_color"),
            strings(frame, "agency_id"),
            strict=True,
        )
    ):
        assert route_id is not None
        if route_id in routes:
            raise FeedError("routes.txt", f"duplicate route_id {route_id!r}", line_of(frame, i))
        route_type = route_types[i]
        routes[route_id] = Route(
            route_id,
            short or "",
            long_ or "",
            3 if route_type is None else route_type,
            color,
            agency,
            translations.lookup("routes", "route_short_name", route_id, short),
            translations.lookup("routes", "route_long_name", route_id, long_),
        )
    return routes


def _shapes(frame: Any, projection: LocalProjection) -> dict[str, Shape]:
    if frame is None:
        return {}
    ids = np.asarray(strings(frame, "shape_id"), dtype=object)
    seq = floats(frame, "shape_pt_sequence", "shapes.txt")
    lat = floats(frame, "shape_pt_lat", "shapes.txt")
    lon = floats(frame, "shape_pt_lon", "shapes.txt")
    bad = np.flatnonzero((np.abs(lat) > 90) | (np.abs(lon) > 180))
    if len(bad):
        raise FeedError("shapes.txt", "shape_pt_lat/shape_pt_lon out of range", line_of(frame, bad[0]))
    order = np.lexsort((seq, ids))
    ids, lat, lon = ids[order], lat[order], lon[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    ends = np.concatenate((starts[1:], [len(ids)]))
    shapes: dict[str, Shape] = {}
    for a, b in zip(starts, ends, strict=True):
        shape_id = str(ids[a])
        x, y = projection.to_xy(lat[a:b], lon[a:b])
        xy = np.column_stack((x, y))
        shapes[shape_id] = Shape(shape_id, xy, cumulative_distance(xy), lat[a:b].copy(), lon[a:b].copy())
    return shapes


def _parse_date(text: str | None, file: str, line: int) -> dt.date:
    try:
        return dt.datetime.strptime(str(text).strip(), "%Y%m%d").date()  # noqa: DTZ007 (a date, no time)
    except ValueError:
        raise FeedError(file, f"{text!r} is not a date YYYYMMDD", line) from None


def _calendar(calendar: Any, calendar_dates: Any) -> ServiceCalendar:
    weekly: list[WeeklyService] = []
    if calendar is not None:
        flags = [optional_ints(calendar, day) for day in _WEEKDAYS]
        for i, (service_id, start, end) in enumerate(
            zip(
                strings(calendar, "service_id"),
                strings(calendar, "start_date"),
                strings(calendar, "end_date"),
                strict=True,
            )
        ):
            line = line_of(calendar, i)
            weekly.append(
                WeeklyService(
                    str(service_id),
                    tuple(bool(f[i]) for f in flags),
                    _parse_date(start, "calendar.txt", line),
                    _parse_date(end, "calendar.txt", line),
                )
            )
    added: dict[dt.date, set[str]] = {}
    removed: dict[dt.date, set[str]] = {}
    if calendar_dates is not None:
        kinds = optional_ints(calendar_dates, "exception_type")
        for i, (service_id, date) in enumerate(
            zip(strings(calendar_dates, "service_id"), strings(calendar_dates, "date"), strict=True)
        ):
            line = line_of(calendar_dates, i)
            day = _parse_date(date, "calendar_dates.txt", line)
            if kinds[i] == 1:
                added.setdefault(day, set()).add(str(service_id))
            elif kinds[i] == 2:
                removed.setdefault(day, set()).add(str(service_id))
            else:
                raise FeedError("calendar_dates.txt", f"exception_type {kinds[i]!r} is not 1 or 2", line)
    return ServiceCalendar(weekly, added, removed)


def _trips(
    tables: dict[str, Any],
    stops: dict[str, Stop],
    routes: dict[str, Route],
    shapes: dict[str, Shape],
    projection: LocalProjection,
    warnings: list[str],
    translations: TranslationTable,
) -> dict[str, Trip]:
    trips_frame = tables["trips"]
    trip_rows: dict[str, int] = {}
    trip_ids = strings(trips_frame, "trip_id")
    route_ids = strings(trips_frame, "route_id")
    shape_ids = strings(trips_frame, "shape_id")
    service_ids = strings(trips_frame, "service_id")
    direction_ids = optional_ints(trips_frame, "direction_id")
    block_ids = strings(trips_frame, "block_id")
    headsigns = strings(trips_frame, "trip_headsign")
    wheelchair = optional_ints(trips_frame, "wheelchair_accessible")
    for i, trip_id in enumerate(trip_ids):
        assert trip_id is not None
        if trip_id in trip_rows:
            raise FeedError("trips.txt", f"duplicate trip_id {trip_id!r}", line_of(trips_frame, i))
        if route_ids[i] not in routes:
            raise FeedError("trips.txt", f"unknown route_id {route_ids[i]!r}", line_of(trips_frame, i))
        shape_id = shape_ids[i]
        if shape_id is not None and shapes and shape_id not in shapes:
            raise FeedError("trips.txt", f"unknown shape_id {shape_id!r}", line_of(trips_frame, i))
        trip_rows[trip_id] = i

    st = tables["stop_times"]
    st_trip = np.asarray(strings(st, "trip_id"), dtype=object)
    st_stop = np.asarray(strings(st, "stop_id"), dtype=object)
    st_seq = floats(st, "stop_sequence", "stop_times.txt")
    lines = st.index.to_numpy() + 2
    for i in range(len(st_trip)):
        if st_trip[i] not in trip_rows:
            raise FeedError("stop_times.txt", f"unknown trip_id {st_trip[i]!r}", int(lines[i]))
        if st_stop[i] not in stops:
            raise FeedError("stop_times.txt", f"unknown stop_id {st_stop[i]!r}", int(lines[i]))
    arrival = gtfs_seconds(strings(st, "arrival_time"), "stop_times.txt", "arrival_time", lines)
    departure = gtfs_seconds(strings(st, "departure_time"), "stop_times.txt", "departure_time", lines)
    st_sdt = floats(st, "shape_dist_traveled", "stop_times.txt") if "shape_dist_traveled" in st.columns else None
    shape_sdt = _shape_dist_traveled(tables["shapes"])

    order = np.lexsort((st_seq, st_trip))
    starts = np.flatnonzero(np.concatenate(([True], st_trip[order][1:] != st_trip[order][:-1])))
    ends = np.concatenate((starts[1:], [len(order)]))
    stop_xy = {sid: projection.to_xy(s.lat, s.lon) for sid, s in stops.items()}
    pattern_dist: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    made_straight_shapes = False
    trips: dict[str, Trip] = {}
    for a, b in zip(starts, ends, strict=True):
        rows = order[a:b]
        trip_id = str(st_trip[rows[0]])
        seq = st_seq[rows]
        duplicate = np.flatnonzero(np.diff(seq) == 0)
        if len(duplicate):
            raise FeedError(
                "stop_times.txt", f"duplicate stop_sequence in trip {trip_id!r}", int(lines[rows[duplicate[0] + 1]])
            )
        if len(rows) < 2:
            warnings.append(f"trip {trip_id} has fewer than two stop_times; skipped")
            continue
        stop_ids = tuple(str(s) for s in st_stop[rows])
        t = trip_rows[trip_id]
        shape_id = shape_ids[t]
        if shape_id is None or shape_id not in shapes:
            shape_id = _straight_shape(stop_ids, stops, stop_xy, shapes)
            made_straight_shapes = True
        shape = shapes[shape_id]
        dist = _stop_dist(trip_id, shape, stop_ids, stop_xy, rows, st_sdt, shape_sdt, pattern_dist)
        arr, dep, given = _schedule(trip_id, arrival[rows], departure[rows], dist, lines[rows])
        trips[trip_id] = Trip(
            trip_id=trip_id,
            route_id=str(route_ids[t]),
            service_id=str(service_ids[t]),
            direction_id=direction_ids[t],
            block_id=block_ids[t],
            shape_id=shape_id,
            headsign=headsigns[t],
            wheelchair_accessible=wheelchair[t],
            stop_ids=stop_ids,
            stop_sequences=seq.astype(np.int64),
            stop_dist=dist,
            arrival=arr,
            departure=dep,
            timepoint=given,
            headsign_translations=translations.lookup("trips", "trip_headsign", trip_id, headsigns[t]),
        )
    if made_straight_shapes:
        warnings.append("no shape for some trips (shapes.txt absent or shape_id empty): straight lines between stops")
    return trips


def _shape_dist_traveled(frame: Any) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Per shape: (the feed's shape_dist_traveled, its vertex order) when the feed gives it for every vertex."""
    if frame is None or "shape_dist_traveled" not in frame.columns:
        return None
    values = floats(frame, "shape_dist_traveled", "shapes.txt")
    if np.isnan(values).any():
        return None
    ids = np.asarray(strings(frame, "shape_id"), dtype=object)
    seq = floats(frame, "shape_pt_sequence", "shapes.txt")
    order = np.lexsort((seq, ids))
    result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ids, values = ids[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    ends = np.concatenate((starts[1:], [len(ids)]))
    for a, b in zip(starts, ends, strict=True):
        v = values[a:b]
        if np.all(np.diff(v) >= 0):
            result[str(ids[a])] = (v, np.arange(b - a))
    return result


def _stop_dist(
    trip_id: str,
    shape: Shape,
    stop_ids: tuple[str, ...],
    stop_xy: dict[str, tuple[np.ndarray, np.ndarray]],
    rows: np.ndarray,
    st_sdt: np.ndarray | None,
    shape_sdt: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    cache: dict[tuple[str, tuple[str, ...]], np.ndarray],
) -> np.ndarray:
    """Metres along the shape of each stop: the feed's shape_dist_traveled when complete, else aligned."""
    if st_sdt is not None and shape_sdt is not None and shape.shape_id in shape_sdt:
        given = st_sdt[rows]
        if not np.isnan(given).any() and np.all(np.diff(given) >= 0):
            feed_dist, _ = shape_sdt[shape.shape_id]
            # the feed's units are unknown (km, m, miles): map them onto our metres vertex by vertex
            return np.asarray(np.interp(given, feed_dist, shape.dist), dtype=np.float64)
    key = (shape.shape_id, stop_ids)
    cached = cache.get(key)
    if cached is None:
        points = np.array([[float(stop_xy[s][0]), float(stop_xy[s][1])] for s in stop_ids])
        cached = stop_distances(points, shape.xy, shape.dist)
        cache[key] = cached
    return cached


def _straight_shape(
    stop_ids: tuple[str, ...],
    stops: dict[str, Stop],
    stop_xy: dict[str, tuple[np.ndarray, np.ndarray]],
    shapes: dict[str, Shape],
) -> str:
    shape_id = "stops:" + hashlib.sha1("\x1f".join(stop_ids).encode()).hexdigest()[:12]
    if shape_id not in shapes:
        xy = np.array([[float(stop_xy[s][0]), float(stop_xy[s][1])] for s in stop_ids])
        lat = np.array([stops[s].lat for s in stop_ids])
        lon = np.array([stops[s].lon for s in stop_ids])
        shapes[shape_id] = Shape(shape_id, xy, cumulative_distance(xy), lat, lon)
    return shape_id


def _schedule(
    trip_id: str, arrival: np.ndarray, departure: np.ndarray, dist: np.ndarray, lines: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrival and departure seconds with blanks interpolated by distance; checked to never go backwards."""
    arr = np.where(np.isnan(arrival), departure, arrival)
    dep = np.where(np.isnan(departure), arrival, departure)
    given = ~np.isnan(arr)
    if not given[0] or not given[-1]:
        missing = 0 if not given[0] else len(arr) - 1
        raise FeedError("stop_times.txt", f"trip {trip_id!r}: first and last stops need times", int(lines[missing]))
    if not given.all():
        known = np.flatnonzero(given)
        for left, right in zip(known[:-1], known[1:], strict=True):
            if right - left < 2:
                continue
            inner = np.arange(left + 1, right)
            span = dist[right] - dist[left]
            if span > 0:
                share = (dist[inner] - dist[left]) / span
            else:
                share = (inner - left) / (right - left)
            arr[inner] = dep[left] + share * (arr[right] - dep[left])
            dep[inner] = arr[inner]
    backwards = np.flatnonzero(dep < arr)
    if len(backwards):
        i = backwards[0]
        raise FeedError("stop_times.txt", f"trip {trip_id!r}: departure before arrival", int(lines[i]))
    backwards = np.flatnonzero(arr[1:] < dep[:-1])
    if len(backwards):
        i = backwards[0] + 1
        raise FeedError("stop_times.txt", f"trip {trip_id!r}: time goes backwards", int(lines[i]))
    return arr, dep, given


def _expand_frequencies(frame: Any, trips: dict[str, Trip]) -> dict[str, Trip]:
    """Replace each frequency-based template trip with one trip per departure: '<trip_id>@<HH:MM:SS>'."""
    lines = frame.index.to_numpy() + 2
    template_ids = strings(frame, "trip_id")
    start = gtfs_seconds(strings(frame, "start_time"), "frequencies.txt", "start_time", lines)
    end = gtfs_seconds(strings(frame, "end_time"), "frequencies.txt", "end_time", lines)
    headway = floats(frame, "headway_secs", "frequencies.txt")
    expanded = dict(trips)
    for i, trip_id in enumerate(template_ids):
        template = trips.get(str(trip_id))
        if template is None:
            raise FeedError("frequencies.txt", f"unknown trip_id {trip_id!r}", int(lines[i]))
        if not headway[i] > 0 or end[i] < start[i]:
            raise FeedError(
                "frequencies.txt", "headway_secs must be positive and end_time after start_time", int(lines[i])
            )
        expanded.pop(template.trip_id, None)
        origin = template.departure[0]
        t = start[i]
        while t < end[i]:
            shift = t - origin
            new_id = f"{template.trip_id}@{int(t) // 3600:02d}:{int(t) % 3600 // 60:02d}:{int(t) % 60:02d}"
            expanded[new_id] = Trip(
                trip_id=new_id,
                route_id=template.route_id,
                service_id=template.service_id,
                direction_id=template.direction_id,
                block_id=template.block_id,
                shape_id=template.shape_id,
                headsign=template.headsign,
                wheelchair_accessible=template.wheelchair_accessible,
                stop_ids=template.stop_ids,
                stop_sequences=template.stop_sequences,
                stop_dist=template.stop_dist,
                arrival=template.arrival + shift,
                departure=template.departure + shift,
                timepoint=template.timepoint,
                headsign_translations=template.headsign_translations,
            )
            t += headway[i]
    return expanded
