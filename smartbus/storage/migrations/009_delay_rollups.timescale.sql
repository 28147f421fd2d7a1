-- Delay distributions, custom on-time windows and headway regularity from rollups, TimescaleDB flavour:
-- continuous aggregates with the same columns as the plain flavour's materialized views (see
-- 009_delay_rollups.plain.sql for why and how they are read).
--   punctuality_delays_route_daily (day, route, 10 s delay bucket);
--   punctuality_delays_hourly (day, UTC hour, 10 s delay bucket);
--   punctuality_headways_stop_daily (day, route, stop): headway sums.
-- Like 003 and 007: real-time aggregation, refreshed by the policy that smartbus.storage.migrate.apply_policies
-- sets and by smartbus.storage.queries.refresh_punctuality.
CREATE MATERIALIZED VIEW punctuality_delays_route_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       route_id,
       (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer AS delay_from_s,
       count(*)::integer AS arrivals,
       (count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) % 10 = 0))::integer AS on_edge,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s
  FROM stop_events
 GROUP BY time_bucket(INTERVAL '1 day', service_date), route_id,
          (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer
WITH NO DATA;

CREATE MATERIALIZED VIEW punctuality_delays_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer AS hour_utc,
       (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer AS delay_from_s,
       count(*)::integer AS arrivals,
       (count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) % 10 = 0))::integer AS on_edge,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s
  FROM stop_events
 GROUP BY time_bucket(INTERVAL '1 day', service_date), extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer,
          (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer
WITH NO DATA;

-- A continuous aggregate takes no window function, so the sum of squared headways is an aggregate of its
-- own (the same in both flavours): the times of a group collected, then sorted. TimescaleDB's finalized
-- continuous aggregates (2.7 and later) take a user-defined aggregate without a combine function.
CREATE FUNCTION smartbus_squared_gaps_final(times timestamptz[]) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sum(date_part('epoch', t - previous) ^ 2)
      FROM (SELECT t, lag(t) OVER (ORDER BY t) AS previous FROM unnest(times) AS t) AS in_order
$$;
-- Sum of the squared gaps (seconds^2) between consecutive times, in time order; NULL for fewer than two.
CREATE AGGREGATE smartbus_squared_gaps(timestamptz) (
    SFUNC = array_append,
    STYPE = timestamptz[],
    FINALFUNC = smartbus_squared_gaps_final,
    INITCOND = '{}'
);

CREATE MATERIALIZED VIEW punctuality_headways_stop_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', service_date) AS service_date,
       route_id,
       stop_id,
       count(*)::integer AS arrivals,
       min(arrival_time) AS first_arrival,
       max(arrival_time) AS last_arrival,
       smartbus_squared_gaps(arrival_time) AS arrival_gaps_sq_sum_s,
       min(scheduled_arrival) AS first_scheduled,
       max(scheduled_arrival) AS last_scheduled,
       smartbus_squared_gaps(scheduled_arrival) AS scheduled_gaps_sq_sum_s
  FROM stop_events
 WHERE scheduled_arrival IS NOT NULL
 GROUP BY time_bucket(INTERVAL '1 day', service_date), route_id, stop_id
WITH NO DATA;

CREATE OR REPLACE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE NOTICE 'on TimescaleDB, refresh with: CALL refresh_continuous_aggregate(''punctuality_hourly'', NULL, NULL), and the same for punctuality_route_hourly, punctuality_stop_daily, punctuality_delays_route_daily, punctuality_delays_hourly and punctuality_headways_stop_daily';
END $$;
