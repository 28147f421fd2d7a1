-- Punctuality rollups at the grains analysts ask for, plain flavour.
--
-- punctuality_hourly (003) has a row per day, route, stop and UTC hour. Where a stop sees a bus or two an
-- hour that is nearly a row per arrival (30 simulated days of the Cairns feed: 448,330 arrivals, 339,279
-- rollup rows), so a month of on-time by route or by hour summed a third of a million rows per request
-- (bench/punctuality.py: p50 0.5-0.7 s). Two coarser rollups, same columns and definitions:
--   punctuality_route_hourly (day, route, UTC hour): by route, hour or day, without a stop;
--   punctuality_stop_daily (day, route, stop): by stop, and by route or day for one stop.
-- punctuality_hourly still answers a stop's hours, through the index on stop_id below.
CREATE MATERIALIZED VIEW punctuality_route_hourly AS
SELECT service_date,
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
 GROUP BY service_date, route_id, extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer
WITH DATA;
CREATE UNIQUE INDEX punctuality_route_hourly_key
    ON punctuality_route_hourly (service_date, route_id, hour_utc) NULLS NOT DISTINCT;

CREATE MATERIALIZED VIEW punctuality_stop_daily AS
SELECT service_date,
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
 GROUP BY service_date, route_id, stop_id
WITH DATA;
CREATE UNIQUE INDEX punctuality_stop_daily_key
    ON punctuality_stop_daily (service_date, route_id, stop_id) NULLS NOT DISTINCT;
CREATE INDEX punctuality_stop_daily_stop ON punctuality_stop_daily (stop_id, service_date);

-- One stop's rows of the fine rollup without reading the others (TimescaleDB makes this index itself).
CREATE INDEX punctuality_hourly_stop ON punctuality_hourly (stop_id, service_date);

CREATE OR REPLACE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_route_hourly;
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_stop_daily;
END $$;
