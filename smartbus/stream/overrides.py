"""Operators' trip-assignment overrides, as the ETA stage sees them: read from the notice store the api
writes, at most every few seconds, and never a reason for a batch to fail.

An override is a notice of kind "override" (see smartbus.live.notices.AssignmentOverride) keyed by
vehicle; it lapses at its end time by itself, and the engine then lets inference take over again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from smartbus import metrics
from smartbus.live.notices import NoticeStore

log = logging.getLogger(__name__)

Overrides = dict[str, tuple[str, str]]  # vehicle_id -> (trip_id, service_date YYYYMMDD)


class OverrideFeed:
    def __init__(
        self,
        notices: NoticeStore,
        *,
        refresh_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` is the service's clock (simulated in the demo), against which notices expire;
        `monotonic` paces the re-reads."""
        self._notices = notices
        self._refresh_s = refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._current: Overrides = {}
        self._read_at: float | None = None
        self._failing = False

    async def current(self) -> Overrides:
        """The overrides in force; the last ones read while the store cannot be reached."""
        now = self._monotonic()
        if self._read_at is not None and now - self._read_at < self._refresh_s:
            return self._current
        self._read_at = now
        try:
            bodies = await self._notices.all("override", self._clock())
        except Exception as exc:  # the store is away: keep what operators said last, retry next time
            metrics.OVERRIDE_READ_ERRORS.inc()
            if not self._failing:
                log.warning("operator overrides unreadable (%s); keeping the last %d", exc, len(self._current))
            self._failing = True
            return self._current
        if self._failing:
            log.info("operator overrides readable again")
        self._failing = False
        self._current = _parse(bodies)
        return self._current


def _parse(bodies: list[dict[str, object]]) -> Overrides:
    found: Overrides = {}
    for body in bodies:
        vehicle, trip, date = body.get("vehicle_id"), body.get("trip_id"), body.get("service_date")
        if isinstance(vehicle, str) and isinstance(trip, str) and isinstance(date, str):
            found[vehicle] = (trip, date)
    return found
