"""Reading a pings file for `smartbus replay`: every good row becomes a ping, every bad one is counted."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from eta.replay import read_pings

HEADER = "vehicle_id,timestamp,latitude,longitude,bearing,speed,trip_id,route_id,direction_id,start_date,start_time\n"


def test_optional_columns_are_read_and_blank_ones_are_none(tmp_path: Path) -> None:
    path = tmp_path / "pings.csv"
    path.write_text(HEADER + "bus-1,1717300000.5,-16.92,145.77,90,8.5,t1,r1,1,20240602,06:15:00\n"
                             "xe-bắc-ninh,1717300030,-16.93,145.78,,,,,,,\n", encoding="utf-8")
    bad: Counter[str] = Counter()
    first, second = read_pings(path, bad)
    assert (first.vehicle_id, first.timestamp, first.bearing, first.speed) == ("bus-1", 1717300000.5, 90.0, 8.5)
    assert (first.trip_id, first.route_id, first.direction_id, first.start_date, first.start_time) == (
        "t1", "r1", 1, "20240602", "06:15:00")
    assert second.vehicle_id == "xe-bắc-ninh"
    assert (second.bearing, second.speed, second.trip_id, second.direction_id, second.start_date) == (None,) * 5
    assert not bad


def test_malformed_rows_are_counted_and_skipped_and_the_good_ones_around_them_kept(tmp_path: Path) -> None:
    path = tmp_path / "pings.csv.gz"
    rows = [
        "bus-1,100,-16.9,145.7,,,,,,,",
        "bus-2,not-a-time,-16.9,145.7,,,,,,,",  # a time that is no number
        "bus-3,101,-16.9",  # cut short
        "",  # a blank line is no row at all
        ",102,-16.9,145.7,,,,,,,",  # no vehicle
        "bus-4,103,-16.9,145.7,,,,,x,,",  # a direction that is no number
        "bus-5,104,-16.9,145.7,,,,,0,,,extra",  # a value too many: the named columns are still right
    ]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(HEADER + "\n".join(rows) + "\n")
    bad: Counter[str] = Counter()
    pings = list(read_pings(path, bad))
    assert [p.vehicle_id for p in pings] == ["bus-1", "bus-5"]
    assert pings[1].direction_id == 0
    assert bad == Counter(malformed_row=4)


def test_a_file_without_a_required_column_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "pings.csv"
    path.write_text("vehicle_id,timestamp,latitude\nbus-1,100,-16.9\n", encoding="utf-8")
    with pytest.raises(ValueError, match="longitude"):
        list(read_pings(path, Counter()))


def test_a_file_with_only_the_required_columns_gives_pings_without_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "pings.csv"
    path.write_text("timestamp,vehicle_id,longitude,latitude\n100,bus-1,145.7,-16.9\n", encoding="utf-8")
    (ping,) = read_pings(path, Counter())
    assert (ping.vehicle_id, ping.timestamp, ping.latitude, ping.longitude) == ("bus-1", 100.0, -16.9, 145.7)
    assert (ping.bearing, ping.speed, ping.trip_id, ping.direction_id, ping.start_time) == (None,) * 5
