"""Writes the small edge-case GTFS feeds next to this file. Run it after changing a feed's geometry.

Each feed sits around Bac Ninh (21.18 N, 106.07 E); coordinates are laid out in metres east/north of
that point, which keeps the geometry readable: see each builder's docstring.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

HERE = Path(__file__).parent
LAT0, LON0 = 21.18, 106.07
M_PER_DEG_LAT = 110_700.0
M_PER_DEG_LON = 111_320.0 * math.cos(math.radians(LAT0))
ALL_DAYS = "1,1,1,1,1,1,1"


def latlon(x: float, y: float) -> tuple[str, str]:
    return f"{LAT0 + y / M_PER_DEG_LAT:.7f}", f"{LON0 + x / M_PER_DEG_LON:.7f}"


def hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def write(folder: str, name: str, header: str, rows: list[list[object]]) -> None:
    path = HERE / folder / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header.split(","))
        out.writerows([["" if v is None else v for v in row] for row in rows])


def common(folder: str, stops: dict[str, tuple[float, float]], routes: list[str]) -> None:
    write(
        folder,
        "agency",
        "agency_id,agency_name,agency_url,agency_timezone",
        [["A", "Test Bus", "https://example.org", "Asia/Ho_Chi_Minh"]],
    )
    write(
        folder,
        "stops",
        "stop_id,stop_name,stop_lat,stop_lon",
        [[sid, f"Stop {sid}", *latlon(x, y)] for sid, (x, y) in stops.items()],
    )
    write(
        folder,
        "routes",
        "route_id,agency_id,route_short_name,route_long_name,route_type",
        [[r, "A", r, f"Route {r}", 3] for r in routes],
    )
    write(
        folder,
        "calendar",
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
        [["ALL", *ALL_DAYS.split(","), "20250101", "20261231"]],
    )


def shape_rows(shape_id: str, points: list[tuple[float, float]]) -> list[list[object]]:
    return [[shape_id, *latlon(x, y), i + 1] for i, (x, y) in enumerate(points)]


def times_rows(
    trip_id: str, stop_ids: list[str], start: int, step: int, dwell: int = 20, blank: frozenset[int] = frozenset()
) -> list[list[object]]:
    rows: list[list[object]] = []
    for i, sid in enumerate(stop_ids):
        arrive = start + i * step
        depart = arrive + (dwell if 0 < i < len(stop_ids) - 1 else 0)
        if i in blank:
            rows.append([trip_id, None, None, sid, i + 1, 0])
        else:
            rows.append([trip_id, hms(arrive), hms(depart), sid, i + 1, 1])
    return rows


def build_loop() -> None:
    """Two routes that pass the same street twice.

    LOLLIPOP: a stem east along y=0 from x=0 to x=1000, round a 500 m block anticlockwise, back west along
    the very same line; outbound stops sit 6 m south of it and inbound stops 6 m north, so only their order
    tells the legs apart. CIRCLE: a 600 m square that starts and ends at the same stop.
    """
    stem = [(float(x), 0.0) for x in range(0, 1001, 100)]
    block = [
        (1250.0, 0.0),
        (1500.0, 0.0),
        (1500.0, 250.0),
        (1500.0, 500.0),
        (1250.0, 500.0),
        (1000.0, 500.0),
        (1000.0, 250.0),
        (1000.0, 0.0),
    ]
    lollipop = stem + block + stem[::-1][1:]
    square = [
        (0.0, -1000.0),
        (300.0, -1000.0),
        (600.0, -1000.0),
        (600.0, -1300.0),
        (600.0, -1600.0),
        (300.0, -1600.0),
        (0.0, -1600.0),
        (0.0, -1300.0),
        (0.0, -1000.0),
    ]
    stops = {
        "S0": (0.0, -6.0),
        "S1": (400.0, -6.0),
        "S2": (800.0, -6.0),
        "L1": (1500.0, 250.0),
        "L2": (1250.0, 506.0),
        "N2": (800.0, 6.0),
        "N1": (400.0, 6.0),
        "N0": (0.0, 6.0),
        "C0": (0.0, -1006.0),
        "C1": (600.0, -1300.0),
        "C2": (300.0, -1606.0),
        "C3": (0.0, -1300.0),
    }
    common("loop", stops, ["LOLLIPOP", "CIRCLE"])
    write(
        "loop",
        "shapes",
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence",
        shape_rows("lollipop", lollipop) + shape_rows("circle", square),
    )
    trips: list[list[object]] = []
    stop_times: list[list[object]] = []
    for k, start in enumerate(range(7 * 3600, 9 * 3600, 1800)):
        trips.append(["LOLLIPOP", "ALL", f"lol-{k}", "Lollipop", 0, "blk-lol", "lollipop"])
        stop_times += times_rows(f"lol-{k}", ["S0", "S1", "S2", "L1", "L2", "N2", "N1", "N0"], start, 120)
        trips.append(["CIRCLE", "ALL", f"circ-{k}", "Circle", 0, None, "circle"])
        stop_times += times_rows(f"circ-{k}", ["C0", "C1", "C2", "C3", "C0"], start + 300, 150)
    write("loop", "trips", "route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id", trips)
    write("loop", "stop_times", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint", stop_times)


def build_out_and_back() -> None:
    """One trip out along a 2 km street and back along the same line, serving the same stops both ways.

    The middle stops have blank times (non-timepoints) to be interpolated by distance.
    """
    out = [(float(x), 0.0) for x in range(0, 2001, 250)]
    line = out + out[::-1][1:]
    stops = {f"P{i}": (500.0 * i, 4.0) for i in range(5)}
    common("out_and_back", stops, ["SHUTTLE"])
    write("out_and_back", "shapes", "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence", shape_rows("oab", line))
    order = ["P0", "P1", "P2", "P3", "P4", "P3", "P2", "P1", "P0"]
    trips: list[list[object]] = []
    stop_times: list[list[object]] = []
    for k, start in enumerate(range(6 * 3600, 8 * 3600, 1800)):
        trips.append(["SHUTTLE", "ALL", f"oab-{k}", "Shuttle", None, None, "oab"])
        stop_times += times_rows(f"oab-{k}", order, start, 100, blank=frozenset({2, 6}))
    write("out_and_back", "trips", "route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id", trips)
    write(
        "out_and_back", "stop_times", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint", stop_times
    )


def build_no_shapes() -> None:
    """No shapes.txt: an L-shaped line of stops; one late trip runs past midnight (23:50 to 24:20)."""
    stops = {"Q0": (0.0, 0.0), "Q1": (800.0, 0.0), "Q2": (1600.0, 0.0), "Q3": (1600.0, 900.0), "Q4": (1600.0, 1800.0)}
    common("no_shapes", stops, ["ELL"])
    trips = [["ELL", "ALL", "ell-day", "Ell", 0, None], ["ELL", "ALL", "ell-night", "Ell", 0, None]]
    stop_times = times_rows("ell-day", list(stops), 12 * 3600, 240) + times_rows(
        "ell-night", list(stops), 23 * 3600 + 50 * 60, 450
    )
    write("no_shapes", "trips", "route_id,service_id,trip_id,trip_headsign,direction_id,block_id", trips)
    write("no_shapes", "stop_times", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint", stop_times)


def build_holiday_frequencies() -> None:
    """Weekday service with a holiday (2025-09-02 removed) and an extra Sunday (2025-08-31 added);
    a frequency-based trip every 10 minutes from 06:00 to 07:00 (six trips)."""
    stops = {"H0": (0.0, 0.0), "H1": (700.0, 300.0), "H2": (1400.0, 0.0)}
    folder = "holiday_frequencies"
    common(folder, stops, ["HOL", "FREQ"])
    write(
        folder,
        "calendar",
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date",
        [["WEEKDAY", 1, 1, 1, 1, 1, 0, 0, "20250101", "20261231"]],
    )
    write(
        folder,
        "calendar_dates",
        "service_id,date,exception_type",
        [["WEEKDAY", "20250902", 2], ["WEEKDAY", "20250831", 1]],
    )
    write(
        folder,
        "shapes",
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence",
        shape_rows("vee", [(0.0, 0.0), (700.0, 300.0), (1400.0, 0.0)]),
    )
    trips = [["HOL", "WEEKDAY", "hol-1", "Vee", 0, None, "vee"], ["FREQ", "WEEKDAY", "freq", "Vee", 0, None, "vee"]]
    stop_times = times_rows("hol-1", list(stops), 9 * 3600, 200) + times_rows("freq", list(stops), 0, 200)
    write(folder, "trips", "route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id", trips)
    write(folder, "stop_times", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint", stop_times)
    write(folder, "frequencies", "trip_id,start_time,end_time,headway_secs", [["freq", "06:00:00", "07:00:00", 600]])


def build_translations() -> None:
    """A Vietnamese feed (feed_lang vi) with names in English and, for one stop, French (translations.txt).

    Route 01 runs east along y=0 from Bến xe Bắc Ninh (x=0) to Phố Mới (x=3000) and back; route VONG goes round
    a 1000 m by 800 m block from the bus station. Translations cover each way of naming a record: by record_id
    (most stops, an agency, one trip's headsign over the one all its siblings share), by field_value (headsigns,
    a stop, a route's long name), plus rows for fields the api does not show (quietly ignored). Phố Mới has no
    translation at all, and VONG's headsign equals its route's long name but is not translated: a field_value
    names one field of one table, never the same text elsewhere.
    """
    folder = "translations"
    stops = {"BX": (0.0, 5.0), "CN": (1000.0, 5.0), "KB": (2000.0, 5.0), "PM": (3000.0, 5.0), "VM": (500.0, 806.0)}
    names = {"BX": "Bến xe Bắc Ninh", "CN": "Chợ Nhớn", "KB": "Đại học Kinh Bắc", "PM": "Phố Mới", "VM": "Văn Miếu"}
    common(folder, stops, [])
    write(
        folder,
        "agency",
        "agency_id,agency_name,agency_url,agency_timezone,agency_lang",
        [["BNB", "Xe buýt Bắc Ninh", "https://example.org", "Asia/Ho_Chi_Minh", "vi"]],
    )
    write(
        folder,
        "feed_info",
        "feed_publisher_name,feed_publisher_url,feed_lang",
        [["Sở Giao thông Vận tải Bắc Ninh", "https://example.org", "vi"]],
    )
    write(
        folder,
        "stops",
        "stop_id,stop_name,stop_desc,stop_lat,stop_lon",
        [[sid, names[sid], f"Điểm dừng {sid}", *latlon(x, y)] for sid, (x, y) in stops.items()],
    )
    write(
        folder,
        "routes",
        "route_id,agency_id,route_short_name,route_long_name,route_type",
        [["01", "BNB", "01", "Bến xe Bắc Ninh – Phố Mới", 3], ["VONG", "BNB", "Tuyến vòng", "Vòng quanh thành phố", 3]],
    )
    street = [(float(x), 0.0) for x in range(0, 3001, 500)]
    block = [(0.0, 0.0), (1000.0, 0.0), (1000.0, 800.0), (0.0, 800.0), (0.0, 0.0)]
    write(
        folder,
        "shapes",
        "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence",
        shape_rows("east", street) + shape_rows("west", street[::-1]) + shape_rows("block", block),
    )
    trips: list[list[object]] = []
    stop_times: list[list[object]] = []
    for k, start in enumerate(range(7 * 3600, 8 * 3600 + 1, 1800)):
        trips.append(["01", "ALL", f"01-east-{k}", "Phố Mới", 0, None, "east"])
        stop_times += times_rows(f"01-east-{k}", ["BX", "CN", "KB", "PM"], start, 240)
    for k, start in enumerate(range(7 * 3600 + 900, 8 * 3600, 1800)):
        trips.append(["01", "ALL", f"01-west-{k}", "Bến xe Bắc Ninh", 1, None, "west"])
        stop_times += times_rows(f"01-west-{k}", ["PM", "KB", "CN", "BX"], start, 240)
        trips.append(["VONG", "ALL", f"vong-{k}", "Vòng quanh thành phố", 0, None, "block"])
        stop_times += times_rows(f"vong-{k}", ["BX", "CN", "VM", "BX"], start - 300, 300)
    write(folder, "trips", "route_id,service_id,trip_id,trip_headsign,direction_id,block_id,shape_id", trips)
    write(folder, "stop_times", "trip_id,arrival_time,departure_time,stop_id,stop_sequence,timepoint", stop_times)
    translations: list[list[object]] = [
        ["agency", "agency_name", "en", "Bac Ninh Buses", "BNB", None, None],
        ["stops", "stop_name", "en", "Bac Ninh Bus Station", "BX", None, None],
        ["stops", "stop_name", "fr", "Gare routière de Bắc Ninh", "BX", None, None],
        ["stops", "stop_name", "en", "Nhon Market", "CN", None, None],
        ["stops", "stop_name", "en", "Kinh Bac University", None, None, "Đại học Kinh Bắc"],
        ["stops", "stop_name", "en", "Temple of Literature", "VM", None, None],
        ["stops", "stop_desc", "en", "Stop VM", "VM", None, None],
        ["routes", "route_short_name", "en", "Loop", "VONG", None, None],
        ["routes", "route_long_name", "en", "Bac Ninh Bus Station – Pho Moi", "01", None, None],
        ["routes", "route_long_name", "en", "City circle", None, None, "Vòng quanh thành phố"],
        ["trips", "trip_headsign", "en", "Pho Moi", None, None, "Phố Mới"],
        ["trips", "trip_headsign", "en", "Pho Moi (last trip)", "01-east-2", None, None],
        ["trips", "trip_headsign", "en", "Bac Ninh Bus Station", None, None, "Bến xe Bắc Ninh"],
        ["feed_info", "feed_publisher_name", "en", "Bac Ninh Department of Transport", None, None, None],
    ]
    write(
        folder,
        "translations",
        "table_name,field_name,language,translation,record_id,record_sub_id,field_value",
        translations,
    )


if __name__ == "__main__":
    build_loop()
    build_out_and_back()
    build_no_shapes()
    build_holiday_frequencies()
    build_translations()
