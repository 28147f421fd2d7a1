"""Service days: which services run on a date (calendar.txt + calendar_dates.txt), in the agency's time zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

_SEARCH_DAYS = 3700  # how far back from the end of the calendar to look for a same-weekday service day


@dataclass(frozen=True)
class WeeklyService:
    service_id: str
    weekdays: tuple[bool, ...]  # Monday first, as date.weekday()
    start: dt.date
    end: dt.date


@dataclass
class ServiceCalendar:
    weekly: list[WeeklyService]
    added: dict[dt.date, set[str]]  # calendar_dates exception_type 1
    removed: dict[dt.date, set[str]]  # calendar_dates exception_type 2
    _cache: dict[dt.date, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def services_on(self, day: dt.date) -> frozenset[str]:
        cached = self._cache.get(day)
        if cached is not None:
            return cached
        active = {s.service_id for s in self.weekly if s.start <= day <= s.end and s.weekdays[day.weekday()]}
        active -= self.removed.get(day, set())
        active |= self.added.get(day, set())
        result = frozenset(active)
        self._cache[day] = result
        return result

    def bounds(self) -> tuple[dt.date, dt.date] | None:
        """First and last date the calendar says anything about, or None for an empty calendar."""
        days = [s.start for s in self.weekly] + [s.end for s in self.weekly] + list(self.added)
        days += list(self.removed)
        return (min(days), max(days)) if days else None

    def map_day(self, real_day: dt.date, has_service: set[str]) -> tuple[dt.date, bool]:
        """The feed date whose service runs on `real_day`, and whether it was mapped.

        Inside the calendar's range a date maps to itself, even without service (a holiday stays a
        holiday). Outside it (a feed from another year), it maps to the same weekday nearest to the end
        of the calendar that has service; failing that, to the latest day with any service.
        `has_service` holds the service_ids that have at least one trip.
        """
        bounds = self.bounds()
        if bounds is None:
            return real_day, False
        first, last = bounds
        if first <= real_day <= last:
            return real_day, False
        day = last - dt.timedelta(days=(last.weekday() - real_day.weekday()) % 7)
        while day >= first and (last - day).days <= _SEARCH_DAYS:
            if self.services_on(day) & has_service:
                return day, True
            day -= dt.timedelta(days=7)
        day = last
        while day >= first and (last - day).days <= _SEARCH_DAYS:
            if self.services_on(day) & has_service:
                return day, True
            day -= dt.timedelta(days=1)
        return real_day, False


def service_day_origin(day: dt.date, timezone: str) -> float:
    """UTC epoch seconds of GTFS time 00:00:00 on `day`: noon local time minus 12 hours.

    On a daylight-saving change day this differs from local midnight by an hour, as the GTFS spec says.
    """
    noon = dt.datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(timezone))
    return noon.timestamp() - 43_200.0
