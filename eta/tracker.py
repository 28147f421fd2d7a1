"""One vehicle's tracker: pings in delivery order in, its state and its stop arrivals/departures out.

Pure and single-threaded: the stream keeps one vehicle's pings on one worker, so no locks.
Seam for prediction: `trip_id`, `service_date`, `progress` (metres along the shape) and `delay_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from eta.assignment import Fit, infer_trip, next_in_block, trusted_fit
from eta.matching import Match
from eta.tracking_context import DayTrips, TrackingContext
from smartbus.messages import Ping, StopEvent, VehicleState, VehicleStatus


@dataclass(slots=True)
class TrackerOutput:
    state: VehicleState | None
    events: list[StopEvent] = field(default_factory=list)
    rejected_reason: str | None = None


@dataclass
class TrackState:
    """Everything a tracker remembers (picklable, for restarts)."""

    last_ts: float | None = None
    last_lat: float = 0.0
    last_lon: float = 0.0
    last_x: float = 0.0
    last_y: float = 0.0
    speed_rejects: int = 0
    trip_id: str | None = None
    service_date: str | None = None
    progress: float = 0.0  # metres along the trip's shape, never decreasing within a trip
    progress_ts: float = 0.0
    next_stop: int = 0  # index of the first stop not yet departed
    pending_arrival: float | None = None  # arrival at next_stop when the vehicle is there now
    pending_interpolated: bool = False
    delay_s: float | None = None
    cruise_mps: float = 7.0
    off_route_count: int = 0
    last_offset: float | None = None


class VehicleTracker:
    def __init__(self, ctx: TrackingContext, vehicle_id: str, state: TrackState | None = None) -> None:
        self.ctx = ctx
        self.vehicle_id = vehicle_id
        self.s = state if state is not None else TrackState(cruise_mps=ctx.config.default_cruise_mps)

    # the seam for predictors
    @property
    def trip_id(self) -> str | None:
        return self.s.trip_id

    @property
    def service_date(self) -> str | None:
        return self.s.service_date

    @property
    def progress(self) -> float:
        return self.s.progress

    @property
    def delay_s(self) -> float | None:
        return self.s.delay_s

    def update(self, ping: Ping) -> TrackerOutput:
        s, cfg = self.s, self.ctx.config
        if s.last_ts is not None:
            if ping.timestamp < s.last_ts:
                return TrackerOutput(None, rejected_reason="out_of_order")
            if ping.timestamp == s.last_ts:
                return TrackerOutput(None, rejected_reason="duplicate")
        x, y = self.ctx.network.projection.point_xy(ping.latitude, ping.longitude)
        if not self.ctx.inside(x, y):
            return TrackerOutput(None, rejected_reason="off_network")
        if s.last_ts is not None:
            jump = math.hypot(x - s.last_x, y - s.last_y)
            if jump > cfg.max_speed_mps * (ping.timestamp - s.last_ts) + 50.0:
                s.speed_rejects += 1
                if s.speed_rejects < cfg.reject_streak_reset:
                    return TrackerOutput(None, rejected_reason="impossible_speed")
                self._unassign()  # several fixes agree with each other, not with the anchor: re-anchor
        s.speed_rejects = 0
        events: list[StopEvent] = []
        if s.trip_id is not None and s.last_ts is not None and ping.timestamp - s.last_ts > cfg.silence_unassign_s:
            self._unassign()
        s.last_ts, s.last_lat, s.last_lon, s.last_x, s.last_y = ping.timestamp, ping.latitude, ping.longitude, x, y

        if ping.trip_id is not None and (s.trip_id is None or ping.trip_id != s.trip_id.split("@")[0]):
            fit = trusted_fit(self.ctx, ping, x, y, self.vehicle_id)
            if fit is not None:
                self._assign(fit, ping.timestamp)
        if s.trip_id is None:
            fit = infer_trip(self.ctx, ping, x, y, self.vehicle_id)
            if fit is None:
                return TrackerOutput(self._state(ping, "unassigned"))
            self._assign(fit, ping.timestamp)
            events += self._advance(fit.match.dist, ping.timestamp, fresh=True)
            return TrackerOutput(self._state(ping, self._status(ping.timestamp)), events)

        match = self._match(x, y, ping.timestamp)
        s.last_offset = match.offset
        if match.offset > cfg.off_route_m:
            s.off_route_count += 1
            if s.off_route_count >= 2 * cfg.off_route_pings:
                self._unassign()  # perhaps another trip: infer again on the next fix
                return TrackerOutput(self._state(ping, "off_route"), events)
            status: VehicleStatus = "off_route" if s.off_route_count >= cfg.off_route_pings else "in_transit"
            return TrackerOutput(self._state(ping, status), events)
        s.off_route_count = 0
        events += self._advance(match.dist, ping.timestamp)
        return TrackerOutput(self._state(ping, self._status(ping.timestamp)), events)

    # --- matching -------------------------------------------------------------------------------
    def _match(self, x: float, y: float, ts: float) -> Match:
        s, cfg = self.s, self.ctx.config
        assert s.trip_id is not None
        trip = self.ctx.network.trips[s.trip_id]
        matcher = self.ctx.matchers.get(trip.shape_id)
        lo = s.progress - cfg.window_back_m
        hi = s.progress + cfg.max_speed_mps * max(ts - s.progress_ts, 1.0) + cfg.window_margin_m
        if hi - lo <= cfg.long_window_m:
            return matcher.project(x, y, lo, hi)
        # a long gap: the window spans several legs; take the one nearest where the schedule (with the
        # current delay) puts the vehicle
        options = matcher.candidates(x, y, lo, hi, cfg.off_route_m)
        if not options:
            return matcher.project(x, y, lo, hi)
        day = self._day()
        timeline = self.ctx.timelines.get(s.trip_id)
        expected = timeline.dist_at(ts - day.origin - (s.delay_s or 0.0)) if day else s.progress
        return min(options, key=lambda m: abs(m.dist - expected) + m.offset)

    def _day(self) -> DayTrips | None:
        return self.ctx.day_of(self.s.service_date) if self.s.service_date else None

    # --- stops --------------------------------------------------------------------------------------
    def _advance(self, dist: float, ts: float, fresh: bool = False) -> list[StopEvent]:
        """Move progress to `dist` at `ts`, emitting the arrivals and departures passed on the way."""
        s, cfg = self.s, self.ctx.config
        assert s.trip_id is not None
        trip = self.ctx.network.trips[s.trip_id]
        stop_dist = trip.stop_dist
        n = len(stop_dist)
        d1, t1 = s.progress, s.progress_ts
        d2 = max(dist, d1)
        events: list[StopEvent] = []
        if fresh:
            # joined mid-trip: stops already behind are not ours to report
            while s.next_stop < n and stop_dist[s.next_stop] + cfg.depart_radius_m < d2:
                s.next_stop += 1
            if s.next_stop < n and stop_dist[s.next_stop] - cfg.arrive_radius_m <= d2 and s.pending_arrival is None:
                s.pending_arrival, s.pending_interpolated = ts, False
            s.progress, s.progress_ts = d2, ts
            self._finish_if_at_end(ts, events)
            self._update_delay(ts)
            return events
        dt = ts - t1
        moved = d2 - d1
        passed = [i for i in range(s.next_stop, n) if stop_dist[i] + cfg.depart_radius_m < d2]
        if dt > 0 and moved > 0 and not passed and s.pending_arrival is None and moved / dt > 2.0:
            s.cruise_mps = 0.8 * s.cruise_mps + 0.2 * min(moved / dt, cfg.max_speed_mps)
        cruise = max(s.cruise_mps, moved / dt if dt > 0 else s.cruise_mps, 0.5)
        slack = max(0.0, dt - moved / cruise)  # time not spent moving at cruise speed: dwell at stops
        dwell_stops = len([i for i in passed if s.pending_arrival is None or i != s.next_stop])
        share = slack / dwell_stops if dwell_stops else 0.0
        cursor_t, cursor_d = t1, d1
        interpolated = dt > cfg.gap_s
        while s.next_stop < n:
            i = s.next_stop
            stop = stop_dist[i]
            if s.pending_arrival is not None:
                if stop + cfg.depart_radius_m < d2:
                    departure = min(max(t1, ts - (d2 - stop) / cruise), ts)
                    events.append(self._event(i, s.pending_arrival, departure, s.pending_interpolated))
                    s.pending_arrival = None
                    s.next_stop += 1
                    cursor_t, cursor_d = departure, stop
                    continue
                break
            if stop - cfg.arrive_radius_m > d2:
                break
            arrival = min(max(cursor_t + max(0.0, stop - cursor_d) / cruise, t1), ts)
            if stop + cfg.depart_radius_m < d2:
                departure = min(arrival + share, ts)
                events.append(self._event(i, arrival, departure, interpolated))
                s.next_stop += 1
                cursor_t, cursor_d = departure, stop
                continue
            s.pending_arrival, s.pending_interpolated = arrival, interpolated
            events.append(self._event(i, arrival, None, interpolated))
            break
        s.progress, s.progress_ts = d2, ts
        self._finish_if_at_end(ts, events)
        self._update_delay(ts)
        return events

    def _finish_if_at_end(self, ts: float, events: list[StopEvent]) -> None:
        """At the last stop the trip is done: report it and move on to the block's next trip."""
        s = self.s
        assert s.trip_id is not None
        trip = self.ctx.network.trips[s.trip_id]
        last = len(trip.stop_ids) - 1
        if s.next_stop < last or s.pending_arrival is None and s.next_stop == last:
            return
        arrival = s.pending_arrival if s.next_stop == last and s.pending_arrival is not None else ts
        if s.next_stop == last:
            if not events or events[-1].stop_sequence != int(trip.stop_sequences[last]):
                events.append(self._event(last, arrival, None, s.pending_interpolated))
        day = self._day()
        finished = s.trip_id
        self._unassign()
        if day is None:
            return
        following = next_in_block(self.ctx, finished, day)
        if following is None:
            return
        nxt = self.ctx.network.trips[following]
        s.trip_id, s.service_date = following, day.service_date
        self.ctx.claims[(day.service_date, following)] = self.vehicle_id
        s.progress, s.progress_ts, s.next_stop = float(nxt.stop_dist[0]), ts, 0
        s.pending_arrival, s.pending_interpolated = arrival, False  # waiting at the first stop: arrived already

    def _event(self, i: int, arrival: float, departure: float | None, interpolated: bool) -> StopEvent:
        s = self.s
        assert s.trip_id is not None and s.service_date is not None
        trip = self.ctx.network.trips[s.trip_id]
        day = self._day()
        return StopEvent(
            vehicle_id=self.vehicle_id,
            trip_id=s.trip_id,
            service_date=s.service_date,
            stop_id=trip.stop_ids[i],
            stop_sequence=int(trip.stop_sequences[i]),
            arrival_time=round(arrival, 3),
            departure_time=None if departure is None else round(departure, 3),
            interpolated=interpolated,
            route_id=trip.route_id,
            scheduled_arrival=None if day is None else day.origin + float(trip.arrival[i]),
            feed_version=self.ctx.network.feed_hash,
        )

    # --- assignment ---------------------------------------------------------------------------------
    def _assign(self, fit: Fit, ts: float) -> None:
        self._unassign()
        s = self.s
        s.trip_id, s.service_date = fit.trip_id, fit.day.service_date
        s.progress, s.progress_ts, s.next_stop = fit.match.dist, ts, 0
        s.pending_arrival, s.delay_s, s.off_route_count = None, fit.delay_s, 0
        self.ctx.claims[(fit.day.service_date, fit.trip_id)] = self.vehicle_id

    def _unassign(self) -> None:
        s = self.s
        if s.trip_id is not None and s.service_date is not None:
            key = (s.service_date, s.trip_id)
            if self.ctx.claims.get(key) == self.vehicle_id:
                del self.ctx.claims[key]
        s.trip_id = s.service_date = None
        s.progress, s.next_stop, s.pending_arrival, s.delay_s, s.off_route_count = 0.0, 0, None, None, 0

    def _update_delay(self, ts: float) -> None:
        s = self.s
        day = self._day()
        if s.trip_id is None or day is None:
            return
        trip = self.ctx.network.trips[s.trip_id]
        t_rel = ts - day.origin
        if s.next_stop == 0 and t_rel < trip.departure[0]:
            s.delay_s = 0.0  # layover before the first departure
            return
        s.delay_s = t_rel - self.ctx.timelines.get(s.trip_id).time_at(s.progress)

    def _status(self, ts: float) -> VehicleStatus:
        s = self.s
        if s.trip_id is None:
            return "unassigned"
        day = self._day()
        trip = self.ctx.network.trips[s.trip_id]
        if s.next_stop == 0 and day is not None and ts - day.origin < trip.departure[0]:
            return "layover"
        return "at_stop" if s.pending_arrival is not None else "in_transit"

    def _state(self, ping: Ping, status: VehicleStatus) -> VehicleState:
        s = self.s
        trip = self.ctx.network.trips.get(s.trip_id) if s.trip_id else None
        nxt = s.next_stop if trip is not None and s.next_stop < len(trip.stop_ids) else None
        return VehicleState(
            vehicle_id=self.vehicle_id,
            timestamp=ping.timestamp,
            latitude=ping.latitude,
            longitude=ping.longitude,
            status=status,
            trip_id=s.trip_id,
            route_id=trip.route_id if trip else ping.route_id,
            service_date=s.service_date,
            shape_dist=round(s.progress, 2) if trip else None,
            offset_m=None if s.last_offset is None or trip is None else round(s.last_offset, 2),
            delay_s=None if s.delay_s is None else round(s.delay_s, 1),
            next_stop_id=trip.stop_ids[nxt] if trip is not None and nxt is not None else None,
            next_stop_sequence=int(trip.stop_sequences[nxt]) if trip is not None and nxt is not None else None,
            speed=ping.speed,
            bearing=ping.bearing,
            feed_version=self.ctx.network.feed_hash,
        )

    def stale_state(self, now: float) -> VehicleState | None:
        """The vehicle's state marked stale when it has been silent too long, else None."""
        s = self.s
        if s.last_ts is None or now - s.last_ts < self.ctx.config.stale_after_s:
            return None
        ping = Ping(self.vehicle_id, s.last_ts, s.last_lat, s.last_lon)
        return self._state(ping, "stale")
