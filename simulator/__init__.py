"""Simulated buses on any GTFS feed: a day of pings as devices send them, and the truth behind them.

    smartbus simulate --vehicles 200 --seed 1 --out day/         # pings.csv, truth_stops.csv, truth_positions.csv
    smartbus simulate --to kafka --from-now --speed 10           # live onto Kafka's "pings" topic

A pure core and thin sinks:
- `blocks`: which bus runs which trips (the feed's blocks, or chained at terminals), and fleet size;
- `motion`: how a bus really runs a trip (delay model, dwell, skipped stops, early departures, short turns);
- `device`: when fixes are taken and what goes wrong with them (noise, dropouts, gaps, duplicates, late,
  out of order, bad readings);
- `generator`: `plan_day` + `simulate`, the lazy merged stream of `records.Delivery` and `records.StopTruth`;
- `sinks` (CSV files, `publish` to any async send, pacing), `kafka_sink`, `live` (the demo's entry point
  `run_live`), `command` / `run` (the CLI).
"""
