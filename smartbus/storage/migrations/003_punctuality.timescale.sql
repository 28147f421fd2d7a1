-- Punctuality rollup for analysts, TimescaleDB flavour: a continuous aggregate with the same columns as
-- the plain flavour's materialized view. Real-time aggregation (materialized_only = false) makes reads
-- include rows not yet materialized, so answers match the plain flavour right after a write.
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

-- The refresh policy is set at start-up with the other policies; between its runs, real-time
-- aggregation keeps reads current, so there is nothing to do here. Kept so callers need not know
-- the flavour.
CREATE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
