"""Where simulated events go: CSV files as fast as possible, or a publisher paced in (accelerated) real time.

The publisher takes any async `send(key, value)`, so the same code feeds Kafka and the in-process bus.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType

from simulator.records import Delivery, Event, StopTruth
from smartbus.messages import encode

Send = Callable[[str, bytes], Awaitable[None]]

PING_COLUMNS = (
    "vehicle_id", "timestamp", "latitude", "longitude", "bearing", "speed",
    "trip_id", "route_id", "direction_id", "start_date", "start_time",
)
STOP_COLUMNS = (
    "vehicle_id", "trip_id", "service_date", "stop_id", "stop_sequence",
    "arrival_time", "departure_time", "served",
)
POSITION_COLUMNS = (
    "vehicle_id", "timestamp", "trip_id", "latitude", "longitude", "shape_dist", "delivered_at", "faults",
)
# A ping's trip descriptor: blanked, the pings are those of devices that send none, and the tracker infers trips.
TRIP_COLUMNS = ("trip_id", "route_id", "direction_id", "start_date", "start_time")


def strip_trip_fields(src: Path, dst: Path) -> None:
    """Copy a pings CSV with every trip descriptor column blanked (the matching issue's accuracy runs)."""
    with src.open(newline="") as f_in, dst.open("w", newline="") as f_out:
        reader = csv.DictReader(f_in)
        writer = csv.DictWriter(f_out, fieldnames=list(reader.fieldnames or []))
        writer.writeheader()
        for row in reader:
            for key in TRIP_COLUMNS:
                if key in row:
                    row[key] = ""
            writer.writerow(row)


def _cell(value: object) -> object:
    return "" if value is None else value


class CsvSink:
    """Writes pings.csv (delivery order), truth_stops.csv and truth_positions.csv into a directory."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self._files = [
            open(out_dir / name, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
            for name in ("pings.csv", "truth_stops.csv", "truth_positions.csv")
        ]
        self._pings, self._stops, self._positions = (csv.writer(f) for f in self._files)
        self._pings.writerow(PING_COLUMNS)
        self._stops.writerow(STOP_COLUMNS)
        self._positions.writerow(POSITION_COLUMNS)
        self.pings = 0
        self.stops = 0

    def write(self, event: Event) -> None:
        if isinstance(event, Delivery):
            p = event.ping
            self._pings.writerow((
                p.vehicle_id, f"{p.timestamp:.3f}", p.latitude, p.longitude, _cell(p.bearing), _cell(p.speed),
                _cell(p.trip_id), _cell(p.route_id), _cell(p.direction_id), _cell(p.start_date),
                _cell(p.start_time),
            ))
            self.pings += 1
            t = event.truth
            if t is not None:
                self._positions.writerow((
                    t.vehicle_id, f"{t.timestamp:.3f}", t.trip_id, f"{t.latitude:.7f}", f"{t.longitude:.7f}",
                    f"{t.shape_dist:.2f}", f"{t.delivered_at:.3f}", t.faults,
                ))
        else:
            self._stops.writerow((
                event.vehicle_id, event.trip_id, event.service_date, event.stop_id, event.stop_sequence,
                f"{event.arrival_time:.3f}", f"{event.departure_time:.3f}", int(event.served),
            ))
            self.stops += 1

    def write_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.write(event)

    def close(self) -> None:
        for f in self._files:
            f.close()

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Pacer:
    """Maps simulated time onto the wall clock: `speed` simulated seconds per real second from `sim_start`."""

    def __init__(self, sim_start: float, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 1.0 <= speed <= 100.0:
            raise ValueError(f"speed must be between 1 and 100, got {speed}")
        self.sim_start, self.speed, self._clock = sim_start, speed, clock
        self._wall_start = clock()

    def delay_until(self, sim_time: float) -> float:
        """Real seconds to wait before `sim_time` is due (0 when already due)."""
        due = self._wall_start + (sim_time - self.sim_start) / self.speed
        return max(0.0, due - self._clock())


async def publish(
    events: Iterable[Event], send: Send, *, pacer: Pacer | None = None, max_batch_wait: float = 0.05
) -> int:
    """Sends every ping (key = vehicle_id, value = encoded Ping) in delivery order; returns how many.

    Without a pacer, as fast as `send` takes them. With one, each ping goes out when its delivery time is
    due; waits shorter than `max_batch_wait` are not slept so that a busy second goes out in a burst.
    """
    sent = 0
    for event in events:
        if not isinstance(event, Delivery):
            continue
        if pacer is not None:
            wait = pacer.delay_until(event.deliver_at)
            if wait > max_batch_wait:
                await asyncio.sleep(wait)
        await send(event.ping.vehicle_id, encode(event.ping))
        sent += 1
        if sent % 2000 == 0:
            await asyncio.sleep(0)  # let the consumer side of an in-process bus run
    return sent


__all__ = ["CsvSink", "Pacer", "Send", "StopTruth", "publish"]
