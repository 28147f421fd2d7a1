-- Punctuality rollups at the grains analysts ask for, TimescaleDB flavour: continuous aggregates with the
-- same columns as the plain flavour's materialized views (see 007_punctuality_rollups.plain.sql for why).
--   punctuality_route_hourly (day, route, UTC hour): by route, hour or day, without a stop;
--   punctuality_stop_daily (day, route, stop): by stop, and by route or day for one stop.
-- Like punctuality_hourly (003): real-time aggregation, refreshed by the policy that
-- smartbus.storage.migrate.apply_policies sets and by smartbus.storage.queries.refresh_punctuality.
-- TimescaleDB indexes each grouping column with the bucket itself (create_group_indexes), so the plain
-- flavour's extra indexes on stop_id need no counterpart here.
CREATE MATERIALIZED VIEW punctuality_route_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       route_id,
       extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer AS hour_utc,
       count(*) AS arrivals,
       count(scheduled_arrival) AS scheduled,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) < -60) AS early,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) BETWEEN -60 AND 300) AS on_time,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) > 300) AS late,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s,
       sum((extract(epoch FROM arrival_time - scheduled_arrival)::double precision) ^ 2) AS delay_sq_sum_s
  FROM stop_events
 GROUP BY time_bucket(INTERVAL '1 day', service_date), route_id,
          extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer
WITH NO DATA;

CREATE MATERIALIZED VIEW punctuality_stop_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       route_id,
       stop_id,
       count(*) AS arrivals,
       count(scheduled_arrival) AS scheduled,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) < -60) AS early,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) BETWEEN -60 AND 300) AS on_time,
       count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) > 300) AS late,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s,
       sum((extract(epoch FROM arrival_time - scheduled_arrival)::double precision) ^ 2) AS delay_sq_sum_s
  FROM stop_events
 GROUP BY time_bucket(INTERVAL '1 day', service_date), route_id, stop_id
WITH NO DATA;

CREATE OR REPLACE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'on TimescaleDB, refresh with: CALL refresh_continuous_aggregate(''punctuality_hourly'', NULL, NULL), and the same for punctuality_route_hourly and punctuality_stop_daily';
END $$;
