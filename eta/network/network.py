"""The compiled network of one feed, and the service-day rules everyone (simulator, tracker, replay) shares."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from eta.network.calendar import ServiceCalendar, service_day_origin
from eta.network.model import Agency, Route, Shape, Stop, Trip
from eta.network.projection import LocalProjection


@dataclass(eq=False)
class Network:
    feed_hash: str  # sha256 of the feed's content; also its "feed version"
    agency_timezone: str  # IANA name
    projection: LocalProjection
    stops: dict[str, Stop]
    routes: dict[str, Route]
    shapes: dict[str, Shape]
    trips: dict[str, Trip]  # frequency-based trips expanded as '<trip_id>@<HH:MM:SS>'
    calendar: ServiceCalendar
    warnings: tuple[str, ...] = ()  # what the compiler had to guess or skip (e.g. no shapes.txt)
    agencies: dict[str, Agency] = field(default_factory=dict)  # by agency_id ("" for one agency without an id)
    # The language of the feed's own text: feed_info's feed_lang, else the agencies' agency_lang; None when
    # unknown or "mul" (names in several languages). Tags are normalised ("en-AU").
    feed_language: str | None = None
    translation_languages: tuple[str, ...] = ()  # the languages translations.txt names things in, sorted
    _trips_by_service: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        by_service: dict[str, list[str]] = {}
        for trip in sorted(self.trips.values(), key=lambda t: (t.start_time, t.trip_id)):
            by_service.setdefault(trip.service_id, []).append(trip.trip_id)
        self._trips_by_service = by_service

    def trips_on(self, feed_day: dt.date) -> list[str]:
        """Ids of the trips that run on `feed_day` (a date of the feed's calendar), by scheduled start."""
        services = self.calendar.services_on(feed_day)
        ids = [t for s in services for t in self._trips_by_service.get(s, ())]
        if len(services) > 1:
            ids.sort(key=lambda t: (self.trips[t].start_time, t))
        return ids

    def service_day_for(self, real_day: dt.date) -> tuple[dt.date, bool]:
        """The feed date whose service runs on `real_day`; True when mapped from outside the feed's calendar.

        Inside the calendar's range a date is itself (a holiday without service stays without service);
        outside it, the same weekday nearest to the end of the calendar that has service.
        """
        return self.calendar.map_day(real_day, set(self._trips_by_service))

    def service_day_origin(self, real_day: dt.date) -> float:
        """UTC epoch seconds of GTFS time 00:00:00 (noon minus 12 h) on `real_day` in the agency's zone."""
        return service_day_origin(real_day, self.agency_timezone)
