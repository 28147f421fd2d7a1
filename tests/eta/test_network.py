from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eta.network import Network, load_network
from eta.network.alignment import cumulative_distance, stop_distances
from smartbus.errors import FeedError
from tests.eta.conftest import CAIRNS, EDGE_FEEDS, FEEDS, edge_network


def assert_sound(network: Network) -> None:
    for shape in network.shapes.values():
        assert np.all(np.diff(shape.dist) >= 0)
    for trip in network.trips.values():
        assert trip.shape_id in network.shapes
        assert np.all(np.diff(trip.stop_dist) >= 0), trip.trip_id
        assert trip.stop_dist[-1] <= network.shapes[trip.shape_id].dist[-1] + 1e-6
        assert np.all(trip.departure >= trip.arrival)
        assert np.all(trip.arrival[1:] >= trip.departure[:-1])
        assert np.all(np.diff(trip.stop_sequences) > 0)


def stop_offset(network: Network, trip_id: str, i: int) -> float:
    """Metres between a stop and the point of the shape at the stop's distance."""
    trip = network.trips[trip_id]
    shape = network.shapes[trip.shape_id]
    stop = network.stops[trip.stop_ids[i]]
    x = np.interp(trip.stop_dist[i], shape.dist, shape.xy[:, 0])
    y = np.interp(trip.stop_dist[i], shape.dist, shape.xy[:, 1])
    sx, sy = network.projection.to_xy(stop.lat, stop.lon)
    return float(np.hypot(x - sx, y - sy))


def test_cairns_compiles_sound_and_every_stop_lies_on_its_shape(cairns: Network) -> None:
    assert len(cairns.trips) == 1339 and len(cairns.routes) == 22
    assert cairns.agency_timezone == "Australia/Brisbane"
    assert_sound(cairns)
    offsets = [
        stop_offset(cairns, t, i) for t in list(cairns.trips)[::50] for i in range(len(cairns.trips[t].stop_ids))
    ]
    assert np.percentile(offsets, 95) < 30


def test_cairns_blank_times_are_interpolated_by_distance(cairns: Network) -> None:
    interpolated = [t for t in cairns.trips.values() if not t.timepoint.all()]
    assert interpolated, "the Cairns feed has stops without times"
    trip = interpolated[0]
    i = int(np.flatnonzero(~trip.timepoint)[0])
    before, after = i - 1, i + 1
    while not trip.timepoint[after]:
        after += 1
    share = (trip.stop_dist[i] - trip.stop_dist[before]) / (trip.stop_dist[after] - trip.stop_dist[before])
    expected = trip.departure[before] + share * (trip.arrival[after] - trip.departure[before])
    assert trip.arrival[i] == pytest.approx(expected)


def test_cached_network_equals_compiled_one(tmp_path: Path) -> None:
    feed = FEEDS / "loop"
    first = load_network(feed, tmp_path)
    assert list(tmp_path.iterdir())
    again = load_network(feed, tmp_path)
    assert again.feed_hash == first.feed_hash and again.trips.keys() == first.trips.keys()
    for trip_id, trip in first.trips.items():
        assert np.array_equal(again.trips[trip_id].stop_dist, trip.stop_dist)


def test_feed_hash_follows_content(tmp_path: Path) -> None:
    copy = tmp_path / "feed"
    shutil.copytree(FEEDS / "loop", copy)
    assert load_network(copy).feed_hash == load_network(FEEDS / "loop").feed_hash
    (copy / "stops.txt").write_text((copy / "stops.txt").read_text().replace("Stop S1", "Stop S one"))
    assert load_network(copy).feed_hash != load_network(FEEDS / "loop").feed_hash


@pytest.mark.parametrize("name", EDGE_FEEDS)
def test_edge_feeds_compile_sound(name: str) -> None:
    assert_sound(edge_network(name))


def test_lollipop_stops_land_on_their_own_leg() -> None:
    network = edge_network("loop")
    trip = network.trips["lol-0"]
    # outbound S1 at 400 m; inbound N1 sits 6 m from the same street but 2,400+ m further along the shape
    by_stop = dict(zip(trip.stop_ids, trip.stop_dist, strict=True))
    assert by_stop["S1"] == pytest.approx(400, abs=10)
    assert by_stop["N1"] == pytest.approx(4000 - 400, abs=10)
    assert by_stop["N0"] == pytest.approx(4000, abs=10)


def test_circle_first_stop_is_also_the_last() -> None:
    trip = edge_network("loop").trips["circ-0"]
    assert trip.stop_ids[0] == trip.stop_ids[-1]
    assert trip.stop_dist[0] == pytest.approx(0, abs=10) and trip.stop_dist[-1] == pytest.approx(2400, abs=10)


def test_out_and_back_serves_each_stop_twice_in_order() -> None:
    trip = edge_network("out_and_back").trips["oab-0"]
    assert trip.stop_dist == pytest.approx([0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000], abs=5)
    assert not trip.timepoint[2] and trip.departure[1] < trip.arrival[2] < trip.arrival[3]


def test_feed_without_shapes_gets_straight_lines_and_a_warning() -> None:
    network = edge_network("no_shapes")
    assert network.warnings
    trip = network.trips["ell-day"]
    assert network.shapes[trip.shape_id].dist[-1] == pytest.approx(1600 + 1800, rel=0.01)


def test_trip_past_midnight_keeps_times_beyond_24h() -> None:
    trip = edge_network("no_shapes").trips["ell-night"]
    assert trip.arrival[-1] == 24 * 3600 + 20 * 60


def test_holiday_and_added_day_follow_calendar_dates() -> None:
    network = edge_network("holiday_frequencies")
    assert network.trips_on(dt.date(2025, 9, 2)) == []  # a Tuesday holiday
    assert "hol-1" in network.trips_on(dt.date(2025, 8, 31))  # a Sunday made a service day
    assert network.trips_on(dt.date(2025, 9, 7)) == []  # an ordinary Sunday
    assert network.service_day_for(dt.date(2025, 9, 2)) == (dt.date(2025, 9, 2), False)


def test_frequencies_expand_into_one_trip_per_departure() -> None:
    network = edge_network("holiday_frequencies")
    expanded = sorted(t for t in network.trips if t.startswith("freq@"))
    assert expanded == [f"freq@06:{m:02d}:00" for m in range(0, 60, 10)]
    assert "freq" not in network.trips
    assert network.trips["freq@06:30:00"].departure[0] == 6.5 * 3600


def test_dates_outside_the_feed_map_to_the_same_weekday_near_its_end(cairns: Network) -> None:
    day, mapped = cairns.service_day_for(dt.date(2026, 3, 4))  # a Wednesday
    assert mapped and day.weekday() == 2 and day.year == 2014 and cairns.trips_on(day)
    inside = dt.date(2014, 7, 2)
    assert cairns.service_day_for(inside) == (inside, False)


def test_service_day_origin_is_noon_minus_twelve_hours_across_dst() -> None:
    from eta.network.calendar import service_day_origin

    # Europe/Berlin springs forward on 2025-03-30: the origin is 23:00 local of the day before
    origin = service_day_origin(dt.date(2025, 3, 30), "Europe/Berlin")
    noon = dt.datetime(2025, 3, 30, 12, tzinfo=dt.UTC).timestamp() - 2 * 3600
    assert origin == noon - 12 * 3600
    assert (
        service_day_origin(dt.date(2025, 6, 3), "Asia/Ho_Chi_Minh")
        == dt.datetime(2025, 6, 2, 17, tzinfo=dt.UTC).timestamp()
    )


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    feed = tmp_path / "feed"
    shutil.copytree(FEEDS / "loop", feed)
    path = feed / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return feed


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        ("stop_times.txt", "lol-0,07:02:00", "lol-0,06:00:00", "backwards"),
        ("stop_times.txt", ",S1,", ",NOPE,", "unknown stop_id"),
        ("trips.txt", "LOLLIPOP,ALL,lol-1", "NOROUTE,ALL,lol-1", "unknown route_id"),
        ("stops.txt", "stop_id,stop_name,stop_lat", "stop_id,stop_name,latitude", "stop_lat"),
        ("stop_times.txt", "lol-0,07:02:00", "lol-0,7h02", "not a time"),
    ],
)
def test_broken_feeds_name_file_row_and_problem(tmp_path: Path, file: str, old: str, new: str, problem: str) -> None:
    feed = broken_copy(tmp_path, file, old, new)
    with pytest.raises(FeedError) as caught:
        load_network(feed)
    assert caught.value.file == file and problem in caught.value.problem
    if "column" not in caught.value.problem:
        assert caught.value.row is not None
        line = (feed / file).read_text().splitlines()[caught.value.row - 1]
        assert new.split(",")[1] in line or new.split(",")[0] in line


def test_missing_required_file_is_named(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    shutil.copytree(FEEDS / "loop", feed)
    (feed / "trips.txt").unlink()
    with pytest.raises(FeedError, match=r"trips\.txt"):
        load_network(feed)


def test_missing_feed_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError):
        load_network(tmp_path / "absent.zip")
    assert CAIRNS.exists()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-2000, 2000), st.floats(-2000, 2000)), min_size=2, max_size=30),
    st.lists(st.floats(0, 1), min_size=1, max_size=12),
)
def test_stop_distances_are_monotone_and_recover_stops_placed_in_order(
    vertices: list[tuple[float, float]], shares: list[float]
) -> None:
    xy = np.array(vertices)
    dist = cumulative_distance(xy)
    wanted = np.sort(np.array(shares)) * dist[-1]
    points = np.column_stack([np.interp(wanted, dist, xy[:, 0]), np.interp(wanted, dist, xy[:, 1])])
    found = stop_distances(points, xy, dist)
    assert np.all(np.diff(found) >= 0)
    # each found position is at least as close to its stop as the true one (same cost or better)
    fx = np.interp(found, dist, xy[:, 0])
    fy = np.interp(found, dist, xy[:, 1])
    assert np.all(np.hypot(fx - points[:, 0], fy - points[:, 1]) < 1e-6 + 1e-9 * dist[-1])
