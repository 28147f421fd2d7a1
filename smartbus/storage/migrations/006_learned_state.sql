-- What the ETA workers' learning predictors learned (run times, dwells, ...), so a restarted worker does not
-- start cold (same in both flavours: a few rows, rewritten every few minutes; no time series).
-- One row per worker of a consumer group and feed version: each worker saw only its own partitions' buses,
-- and a starting worker merges its group's rows. `state` is the predictor's own versioned format
-- (eta/prediction/learned_state.py): gzip of JSON, some hundreds of kB for a city's day.
CREATE TABLE learned_states (
    consumer_group text        NOT NULL,
    feed_version   text        NOT NULL,
    worker_id      text        NOT NULL,
    state          bytea       NOT NULL,
    saved_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, feed_version, worker_id)
);
-- bytea would be compressed again by TOAST: it is gzip already.
ALTER TABLE learned_states ALTER COLUMN state SET STORAGE EXTERNAL;
