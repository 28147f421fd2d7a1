-- Punctuality rollup for analysts, plain flavour: a materialized view refreshed by refresh_punctuality().
-- One row per (service_date, route_id, stop_id, UTC hour of arrival). delay = arrival - scheduled, seconds;
-- early < -60 s, late > +300 s, on time in between. Arrivals without a schedule count in `arrivals` only.
CREATE MATERIALIZED VIEW punctuality_hourly AS
SELECT service_date,
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
 GROUP BY service_date, route_id, stop_id, extract(hour FROM arrival_time AT TIME ZONE 'UTC')::integer
WITH DATA;

-- A unique index lets refresh run CONCURRENTLY, so analysts' reads never wait for it.
CREATE UNIQUE INDEX punctuality_hourly_key
    ON punctuality_hourly (service_date, route_id, stop_id, hour_utc) NULLS NOT DISTINCT;

CREATE FUNCTION refresh_punctuality() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    REFRESH MATERIALIZED VIEW CONCURRENTLY punctuality_hourly;
END $$;
