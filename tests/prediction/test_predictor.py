"""What riders would notice about predictions: never garbage, learning from the buses ahead, a block's
next trip, state that persists, replays that repeat byte for byte."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from eta.network import Network
from eta.prediction import LearningPredictor
from eta.prediction.predictor import RECOMPUTE_S
from eta.replay import replay
from smartbus.messages import StopEvent, VehicleState, VehicleStatus

DAY = dt.date(2024, 5, 14)
DATE = "20240514"


def _long_trip(network: Network) -> str:
    ids = network.trips_on(network.service_day_for(DAY)[0])
    return max(ids[:200], key=lambda t: len(network.trips[t].stop_ids))


def _state(network: Network, trip_id: str, index: int, share: float, now_offset: float, status: VehicleStatus,
           vehicle: str = "bus-1") -> VehicleState:
    trip = network.trips[trip_id]
    origin = network.service_day_origin(DAY)
    before = float(trip.stop_dist[max(index - 1, 0)])
    dist = before + share * (float(trip.stop_dist[index]) - before)
    return VehicleState(
        vehicle_id=vehicle, timestamp=origin + float(trip.arrival[index]) + now_offset, latitude=0.0, longitude=0.0,
        status=status, trip_id=trip_id, service_date=DATE, shape_dist=dist,
        next_stop_sequence=int(trip.stop_sequences[index]), next_stop_id=trip.stop_ids[index],
    )


def _events(network: Network, trip_id: str, vehicle: str, run_factor: float, start: float) -> list[StopEvent]:
    """A bus running the trip with every run `run_factor` times the schedule's, dwelling 20 s."""
    trip = network.trips[trip_id]
    t = start
    out = []
    for i, stop_id in enumerate(trip.stop_ids):
        if i:
            t += max(float(trip.arrival[i] - trip.departure[i - 1]), 30.0) * run_factor
        out.append(StopEvent(vehicle, trip_id, DATE, stop_id, int(trip.stop_sequences[i]), t, t + 20.0, False))
        t += 20.0
    return out


def test_predictions_are_never_garbage(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    trip = cairns.trips[trip_id]
    origin = cairns.service_day_origin(DAY)

    @given(
        index=st.integers(0, len(trip.stop_ids) - 1),
        share=st.floats(0.0, 1.0),
        offset=st.floats(-900.0, 1800.0),
        status=st.sampled_from(["in_transit", "at_stop", "layover"]),
        learned=st.booleans(),
        factor=st.floats(0.5, 2.0),
    )
    def check(index: int, share: float, offset: float, status: VehicleStatus, learned: bool, factor: float) -> None:
        predictor = LearningPredictor(cairns)
        if learned:
            predictor.observe(_events(cairns, trip_id, "bus-0", factor, origin + float(trip.departure[0]) - 600))
        state = _state(cairns, trip_id, index, share, offset, status)
        found = predictor.predict(state)
        assert found is not None
        arrivals = [s.predicted_arrival for s in found.stops]
        assert all(a >= state.timestamp for a in arrivals)
        assert arrivals == sorted(arrivals)
        assert all(a <= state.timestamp + predictor.horizon_s for a in arrivals)
        assert all(s.uncertainty_s > 0 for s in found.stops)
        ours = [s for s in found.stops if s.trip_id == trip_id]
        first = index + 1 if status in ("at_stop", "layover") else index
        assert all(s.stop_sequence >= int(trip.stop_sequences[first]) for s in ours)
        assert all(s.method == "block_next" for s in found.stops if s.trip_id != trip_id)

    check()


def test_no_predictions_from_a_bus_off_its_route_or_overdue_at_its_first_stop(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    assert predictor.predict(_state(cairns, trip_id, 4, 0.5, 0.0, "off_route")) is None
    # its first fixes far off the line, before the tracker calls it off route, mislead as much
    on_line = _state(cairns, trip_id, 4, 0.5, 0.0, "in_transit")
    assert predictor.predict(on_line) is not None
    assert predictor.predict(dataclasses.replace(on_line, offset_m=500.0)) is None
    trip = cairns.trips[trip_id]
    came = cairns.service_day_origin(DAY) + float(trip.departure[0]) - 300.0
    predictor.observe([StopEvent("bus-1", trip_id, DATE, trip.stop_ids[0], int(trip.stop_sequences[0]), came, None,
                                 False)])
    assert predictor.predict(_state(cairns, trip_id, 0, 0.0, 0.0, "layover")) is not None
    assert predictor.predict(_state(cairns, trip_id, 0, 0.0, 1200.0, "layover")) is None


def test_a_bus_tracked_on_a_trip_hours_later_does_not_teach_every_bus_to_leave_its_first_stop_early(
    cairns: Network,
) -> None:
    """A device naming a trip three hours later makes its bus leave that trip's first stop three hours early.
    Learned as the time buses leave after their scheduled start, that one stay would put every waiting bus on
    the road hours before its time, or give up on it as overdue: riders at the next stops would see nothing."""
    ids = cairns.trips_on(cairns.service_day_for(DAY)[0])
    misnamed, waiting = ids[0], _long_trip(cairns)
    origin = cairns.service_day_origin(DAY)
    start = origin + float(cairns.trips[misnamed].departure[0])
    first = cairns.trips[misnamed]
    predictor = LearningPredictor(cairns)
    predictor.observe([StopEvent("bus-0", misnamed, DATE, first.stop_ids[0], int(first.stop_sequences[0]),
                                 start - 4 * 3600.0, start - 3 * 3600.0, False)])

    state = _state(cairns, waiting, 0, 0.0, -300.0, "layover")  # five minutes before its departure
    found = predictor.predict(state)

    assert found is not None and found.stops
    trip = cairns.trips[waiting]
    assert found.stops[0].predicted_arrival >= origin + float(trip.departure[0])  # not before it sets off


def test_a_slow_day_learned_from_the_bus_ahead_moves_predictions_later(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    trip = cairns.trips[trip_id]
    origin = cairns.service_day_origin(DAY)
    state = _state(cairns, trip_id, 2, 0.5, 0.0, "in_transit")
    cold = LearningPredictor(cairns).predict(state)
    warm = LearningPredictor(cairns)
    warm.observe(_events(cairns, trip_id, "bus-0", 1.5, origin + float(trip.departure[0]) - 900))
    learned = warm.predict(state)
    assert cold is not None and learned is not None
    assert cold.stops[0].method == "schedule_delay"
    assert learned.stops[-1].method in ("blend", "recent", "history")
    common = min(len(cold.stops), len(learned.stops)) - 1
    assert learned.stops[common].predicted_arrival > cold.stops[common].predicted_arrival + 60


def test_near_the_end_of_a_trip_it_predicts_the_blocks_next_trip(cairns: Network) -> None:
    predictor = LearningPredictor(cairns)
    ids = cairns.trips_on(cairns.service_day_for(DAY)[0])
    trip_id = next(t for t in ids if predictor.blocks.next_trip(DATE, t) is not None)
    trip = cairns.trips[trip_id]
    found = predictor.predict(_state(cairns, trip_id, len(trip.stop_ids) - 1, 0.5, 0.0, "in_transit"))
    assert found is not None
    following = predictor.blocks.next_trip(DATE, trip_id)
    assert following is not None
    nxt = [s for s in found.stops if s.trip_id == following]
    assert nxt and all(s.method == "block_next" for s in nxt)
    # a bus never leaves the terminal before the next trip's time
    origin = cairns.service_day_origin(DAY)
    second = cairns.trips[following]
    if len(nxt) > 1:
        assert nxt[1].predicted_arrival >= origin + float(second.departure[0])


def test_learned_state_survives_save_and_load(cairns: Network, tmp_path: Path) -> None:
    trip_id = _long_trip(cairns)
    trip = cairns.trips[trip_id]
    origin = cairns.service_day_origin(DAY)
    predictor = LearningPredictor(cairns)
    predictor.observe(_events(cairns, trip_id, "bus-0", 1.3, origin + float(trip.departure[0]) - 900))
    predictor.save(tmp_path / "state.json")
    loaded = LearningPredictor.load(cairns, tmp_path / "state.json")
    assert loaded.state_bytes() == predictor.state_bytes()
    state = _state(cairns, trip_id, 3, 0.2, 0.0, "in_transit", vehicle="bus-9")
    a, b = predictor.predict(state), loaded.predict(state)
    assert a is not None and b is not None
    assert [s.predicted_arrival for s in a.stops] == [s.predicted_arrival for s in b.stops]


def test_replay_with_predictions_is_byte_identical_and_the_state_warms_the_next_run(
    cairns: Network, tmp_path: Path
) -> None:
    from eta.prediction.recorder import PredictionRecorder
    from tests.eta.pings import trip_pings

    pings, _ = trip_pings(cairns, _long_trip(cairns), DAY, interval_s=30.0, noise_m=10.0, seed=7, lead_s=120.0)
    csv_path = tmp_path / "pings.csv"
    lines = ["vehicle_id,timestamp,latitude,longitude"]
    lines += [f"{p.vehicle_id},{p.timestamp},{p.latitude:.7f},{p.longitude:.7f}" for p in pings]
    csv_path.write_text("\n".join(lines) + "\n")
    for name in ("a", "b"):
        recorder = PredictionRecorder(cairns, tmp_path / name, state_out=tmp_path / f"{name}.state")
        replay(cairns, csv_path, tmp_path / name, on_output=recorder.on_output)
        recorder.close()
    first = (tmp_path / "a" / "predictions.jsonl").read_bytes()
    assert first == (tmp_path / "b" / "predictions.jsonl").read_bytes()
    assert first.count(b"\n") > 50
    assert (tmp_path / "a.state").read_bytes() == (tmp_path / "b.state").read_bytes()
    warm = PredictionRecorder(cairns, tmp_path / "c", state_in=tmp_path / "a.state")
    assert warm.predictor.model.segment  # the learned run times came back
    warm.close()


def test_a_bus_on_layover_at_a_stand_a_street_away_from_the_first_stop_is_predicted_from(cairns: Network) -> None:
    """A stand may lie a street away from the trip's first stop (the tracker holds a bus there on layover): its
    trip leaves at the timetable's time all the same, and riders ahead are shown it."""
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    waiting = dataclasses.replace(_state(cairns, trip_id, 0, 0.0, -300.0, "layover"), offset_m=130.0)

    found = predictor.predict(waiting)
    assert found is not None and found.stops
    assert all(stop.trip_id != trip_id or stop.stop_sequence > int(cairns.trips[trip_id].stop_sequences[0])
               for stop in found.stops)


def test_after_a_restart_the_fleets_walks_are_redone_over_two_minutes_not_all_at_once(cairns: Network) -> None:
    """Every bus is first heard in the same second after a restart. Were each walk redone at one fixed age, the
    whole fleet would be walked and republished together again every RECOMPUTE_S (a spike in every board)."""
    trip_id = _long_trip(cairns)
    fleet = [_state(cairns, trip_id, 2, 0.5, 0.0, "in_transit", vehicle=f"bus-{k}") for k in range(50)]
    first, again = LearningPredictor(cairns), LearningPredictor(cairns)
    for predictor in (first, again):
        for state in fleet:
            assert predictor.publish(state) is not None
    now = fleet[0].timestamp
    redo = sorted(path.redo_at - now for path in first._paths.values())
    assert RECOMPUTE_S * 0.75 <= redo[0] and redo[-1] <= RECOMPUTE_S * 1.25
    assert redo[-1] - redo[0] > 90.0  # spread over most of the two minutes
    assert redo == sorted(path.redo_at - now for path in again._paths.values())  # a replay gives the same


def test_a_bus_held_at_a_stop_but_as_near_the_next_one_a_few_metres_on_is_not_predicted_there(
    cairns: Network,
) -> None:
    # Two stops closer together than GPS tells apart (Cairns has bays 16 m apart): the tracker holds the bus at
    # the first while it may stand at the second. Predicting "due now" there, a minute after it came, is garbage.
    ids = cairns.trips_on(cairns.service_day_for(DAY)[0])
    trip_id, index = next(
        (t, i)
        for t in ids
        for i in range(1, len(cairns.trips[t].stop_ids) - 2)
        if cairns.trips[t].stop_dist[i + 1] - cairns.trips[t].stop_dist[i] < 20.0
    )
    trip = cairns.trips[trip_id]
    first, second = float(trip.stop_dist[index]), float(trip.stop_dist[index + 1])
    held = _state(cairns, trip_id, index, 1.0, 60.0, "at_stop")

    def predicted(shape_dist: float) -> list[int]:
        found = LearningPredictor(cairns).predict(dataclasses.replace(held, shape_dist=shape_dist))
        assert found is not None
        return [s.stop_sequence for s in found.stops if s.trip_id == trip_id]

    following, after = int(trip.stop_sequences[index + 1]), int(trip.stop_sequences[index + 2])
    assert predicted(first + 2.0)[0] == following  # standing at the first stop: the next one is still to come
    assert predicted(second - 0.5)[0] == after  # as near the next as a bus standing there: not predicted there
    assert predicted(second + 3.0)[0] == after  # past it already


def test_a_bus_waiting_at_its_first_stop_since_before_its_time_is_predicted_to_leave_on_time_not_ever_later(
    cairns: Network,
) -> None:
    # No stop event says when it came (its first trip of the day): it came no later than it was first seen there.
    # Taking each fix's time instead put its departure a turnaround after every fix, receding as it waited.
    trip_id = _long_trip(cairns)
    trip = cairns.trips[trip_id]
    predictor = LearningPredictor(cairns)
    firsts = []
    for offset in (-40.0, -25.0, -10.0, 5.0):  # from its scheduled departure, standing there; due out 20 s after it
        found = predictor.predict(_state(cairns, trip_id, 0, 0.0, offset, "layover"))
        assert found is not None
        ours = [s for s in found.stops if s.trip_id == trip_id]
        assert ours[0].stop_sequence == int(trip.stop_sequences[1])
        firsts.append(ours[0].predicted_arrival)
    assert max(firsts) - min(firsts) < 5.0, firsts


def test_with_no_walk_to_spare_a_bus_due_another_keeps_its_last_and_a_new_bus_waits_for_one(cairns: Network) -> None:
    trip_id = _long_trip(cairns)
    predictor = LearningPredictor(cairns)
    state = _state(cairns, trip_id, 2, 0.5, 0.0, "in_transit")
    assert predictor.publish(state) is not None
    walked = predictor._paths[state.vehicle_id]
    predictor.walk_allowance = 0.0
    # heard where it was, after its walk was due again: its board still moves (its stop ahead is later now)
    stuck = dataclasses.replace(state, timestamp=walked.redo_at + 1.0)
    shown = predictor.publish(stuck)
    assert shown is not None and shown.stops[0].predicted_arrival > state.timestamp + 200.0
    assert predictor._paths[state.vehicle_id] is walked and predictor.walks_held_back == 0
    # a bus first heard now gets nothing yet (no board rather than a stale one), and its walk at a later fix
    other = _state(cairns, trip_id, 5, 0.5, 0.0, "in_transit", vehicle="bus-2")
    assert predictor.publish(other) is None and predictor.walks_held_back == 1
    predictor.walk_allowance = 1.0
    assert predictor.publish(dataclasses.replace(other, timestamp=other.timestamp + 1.0)) is not None
    assert predictor.walk_allowance == 0.0


def test_a_bus_on_another_trip_with_no_walk_to_spare_is_not_shown_on_its_old_one(cairns: Network) -> None:
    """Its old walk no longer stands for it: were it then silent for a while, its old trip's stops would be shown
    again as a silent bus's are."""
    ids = cairns.trips_on(cairns.service_day_for(DAY)[0])
    first, then = ids[0], next(t for t in ids[1:200] if len(cairns.trips[t].stop_ids) > 10)
    predictor = LearningPredictor(cairns)
    on_first = _state(cairns, first, 2, 0.5, 0.0, "in_transit")
    assert predictor.publish(on_first) is not None
    predictor.walk_allowance = 0.0
    moved = dataclasses.replace(_state(cairns, then, 2, 0.5, 0.0, "in_transit"), timestamp=on_first.timestamp + 5.0)
    assert predictor.publish(moved) is None
    assert predictor.republish_silent(on_first.timestamp + 300.0) == []
    assert predictor.silent_trips(on_first.timestamp + 300.0) == []
