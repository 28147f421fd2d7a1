-- Delay distributions, custom on-time windows and headway regularity from rollups, plain flavour.
--
-- 003 and 007 count only the default on-time window; everything else was counted from the arrivals on each
-- request (bench/punctuality.py, 30 simulated days of the Cairns feed, 448,330 arrivals: delay distribution
-- p50 1.1 s, a 120/600 s window 1.2 s, headways 4.5 s). Delay = arrival - scheduled arrival, as in 003.
--
-- Delay histograms: a row per group and 10 s delay bucket [delay_from_s, delay_from_s + 10). on_edge counts
-- the delays exactly on the bucket's lower edge, so a window whose edges are whole buckets is counted
-- exactly: early (< -E) is every bucket below -E, late (> L) every bucket from L up less the delays of
-- exactly L. Arrivals without a schedule are the row whose delay_from_s is NULL.
--   punctuality_delays_route_daily (day, route, bucket): distributions, on-time by route or day;
--   punctuality_delays_hourly (day, UTC hour, bucket): on-time by hour, without a route filter.
-- 30 days of Cairns: 67,923 and 71,738 rows. With the route in the hourly one it had 241,575 (buckets barely
-- group delays spread over hours), and a month by hour took 130 ms to sum with bigint counts and 85 ms with
-- integer ones (sum(bigint) adds in numeric, sum(integer) in bigint): hence integer counts, and no route.
CREATE MATERIALIZED VIEW punctuality_delays_route_daily AS
SELECT service_date,
       route_id,
       (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer AS delay_from_s,
       count(*)::integer AS arrivals,
       (count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) % 10 = 0))::integer AS on_edge,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s
  FROM stop_events
 GROUP BY service_date, route_id, (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer
WITH DATA;
CREATE UNIQUE INDEX punctuality_delays_route_daily_key
    ON punctuality_delays_route_daily (service_date, route_id, delay_from_s) NULLS NOT DISTINCT;

CREATE MATERIALIZED VIEW punctuality_delays_hourly AS
SELECT service_date,
       extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer AS hour_utc,
       (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer AS delay_from_s,
       count(*)::integer AS arrivals,
       (count(*) FILTER (WHERE extract(epoch FROM arrival_time - scheduled_arrival) % 10 = 0))::integer AS on_edge,
       sum(extract(epoch FROM arrival_time - scheduled_arrival)::double precision) AS delay_sum_s
  FROM stop_events
 GROUP BY service_date, extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer,
          (floor(extract(epoch FROM arrival_time - scheduled_arrival) / 10) * 10)::integer
WITH DATA;
CREATE UNIQUE INDEX punctuality_delays_hourly_key
    ON punctuality_delays_hourly (service_date, hour_utc, delay_from_s) NULLS NOT DISTINCT;

-- Headways: the arrivals of a route at a stop on a service day, in time order, are h_1..h_n apart, and a
-- rider turning up at random waits sum(h^2) / (2 sum(h)). sum(h) is last - first; sum(h^2) needs the
-- arrivals in order, which smartbus_squared_gaps gives without a window function (continuous aggregates
-- take none). Only arrivals with a schedule count, and the scheduled headways come from the scheduled times
-- in their own order. 30 days of Cairns: 28,965 rows for 448,330 arrivals.
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

CREATE MATERIALIZED VIEW punctuality_headways_stop_daily AS
SELECT service_date,
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
 GROUP BY service_date, route_id, stop_id
WITH DATA;
CREATE UNIQUE INDEX punctuality_headways_stop_daily_key
    ON punctuality_headways_stop_daily (service_date, route_id, stop_id) NULLS NOT DISTINCT;

CREATE OR REPLACE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_route_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_stop_daily;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_delays_route_daily;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_delays_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_headways_stop_daily;
END $$;
