"""Prometheus metrics shared by every process (one registry per process, defined once here)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PINGS_IN = Counter("smartbus_pings_total", "Pings read by the ETA worker")
PINGS_REJECTED = Counter("smartbus_pings_rejected_total", "Pings rejected, by reason", ["reason"])
STATES_OUT = Counter("smartbus_vehicle_states_total", "Vehicle states produced")
STOP_EVENTS_OUT = Counter("smartbus_stop_events_total", "Stop events produced")
PREDICTIONS_OUT = Counter("smartbus_prediction_sets_total", "Prediction sets produced")
WALKS_HELD_BACK = Counter(
    "smartbus_prediction_walks_held_back_total",
    "Fixes whose vehicle needed a whole walk of its stops ahead when the worker's allowance a second was spent "
    "(walked at a later fix)",
)
BATCH_SIZE = Histogram(
    "smartbus_batch_size", "Records per processed batch", ["stage"], buckets=(1, 10, 100, 500, 1000, 2000, 5000)
)
PROCESSING_SECONDS = Histogram(
    "smartbus_batch_seconds",
    "Time to process and make durable one batch",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
ROWS_WRITTEN = Counter("smartbus_rows_written_total", "Rows newly stored, by table", ["table"])
SINK_ERRORS = Counter("smartbus_sink_errors_total", "Failed sink writes (retried), by stage", ["stage"])
LAST_BATCH_AT = Gauge("smartbus_last_batch_timestamp", "When each stage last finished a batch", ["stage"])
CONSUMER_LAG = Gauge(
    "smartbus_consumer_lag", "Messages behind the partition's high-water mark", ["group", "topic", "partition"]
)
PING_LATENCY_SECONDS = Histogram(
    "smartbus_ping_latency_seconds",
    "From the ping's receipt at ingest (or its fix time) to its outputs being durable on the bus",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
PINGS_ACCEPTED = Counter("smartbus_ingest_pings_total", "Pings accepted at the ingest edge, by source", ["source"])
SNAPSHOT_LOADS = Counter("smartbus_tracker_snapshots_loaded_total", "Vehicle trackers restored from snapshots")
PINGS_REPLAYED = Counter(
    "smartbus_pings_replayed_total",
    "Pings read again after a restart or rebalance that a restored snapshot had already taken: skipped",
)
LEARNED_STATE_LOADS = Counter(
    "smartbus_learned_state_loads_total",
    "Loads of the predictor's learned state, by result (applied, carried_over from another feed version, "
    "none stored yet, failed)",
    ["result"],
)
LEARNED_STATE_SAVES = Counter(
    "smartbus_learned_state_saves_total", "Saves of the predictor's learned state, by result (ok, failed)", ["result"]
)
LEARNED_STATE_BYTES = Gauge("smartbus_learned_state_bytes", "Size of the learned state last saved")
LEARNED_STATE_SAVED_AT = Gauge("smartbus_learned_state_saved_timestamp", "When the learned state was last saved")
LEARNED_STATE_HOLD_SECONDS = Gauge(
    "smartbus_learned_state_hold_seconds",
    "The longest the last save of the learned state held the event loop at once (encoding one slice)",
)
READY = Gauge("smartbus_ready", "1 when the process is connected and processing, 0 otherwise")
COMMIT_ERRORS = Counter("smartbus_commit_errors_total", "Offset commits that failed (covered by the next)", ["stage"])
OVERRIDE_READ_ERRORS = Counter(
    "smartbus_override_read_errors_total", "Reads of operators' trip overrides that failed (the last ones kept)"
)
PINGS_PLACED_LATE = Counter(
    "smartbus_pings_placed_late_total",
    "Pings delivered after newer ones: rejected for tracking, stored as positions of the past",
)
PHASE_SECONDS = Histogram(
    "smartbus_batch_phase_seconds",
    "Time one batch spends in each phase of a stage (where a batch's time goes)",
    ["stage", "phase"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GC_PAUSE_SECONDS = Histogram(
    "smartbus_gc_pause_seconds",
    "How long each collection of the cyclic garbage collector stopped the process, by generation",
    ["generation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
