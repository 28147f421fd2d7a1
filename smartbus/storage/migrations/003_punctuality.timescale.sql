-- Punctuality rollup for analysts, TimescaleDB flavour: a continuous aggregate with the same columns as
-- the plain flavour's materialized view. Real-time aggregation (materialized_only = false) makes reads
-- include rows newer than the last materialized bucket, so new days show up without a refresh. A late
-- row in a day already materialized shows once the aggregate is refreshed again: by the policy (days
-- 1 to 7 back, hourly) or by smartbus.storage.queries.refresh_punctuality (everything invalidated).
CREATE MATERIALIZED VIEW punctuality_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       route_id,
       stop_id,
       extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer AS hour_utc,
       count(*) AS arrivals,
       count(scheduled_arrival) AS scheduled,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) < -60) AS early,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) BETWEEN -60 AND 300) AS on_time,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) > 300) AS late,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s,
       sum((extract(epoch FROM arrival_time - scheduled_arrival)::double precision) ^ 2) AS delay_sq_sum_s
  FROM stop_events
 GROUP BY time_bucket(INTERVAL '1 day', service_date), route_id, stop_id,
          extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer
WITH NO DATA;

-- The plain flavour's manual refresh, for an operator at a psql prompt. TimescaleDB refuses to refresh a
-- continuous aggregate from inside a function, so this one can only say how; it does not fail, so that
-- scripts written for either flavour still run.
CREATE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'on TimescaleDB, refresh with: CALL refresh_continuous_aggregate(''punctuality_hourly'', NULL, NULL)';
END $$;
