-- Retention cuts at the same UTC day as the plain flavour's, by the background policy and the manual call alike.
-- 001 made stop_events and rejected_pings chunks 7 days wide, and TimescaleDB drops only whole chunks: a week
-- straddling the cut was kept whole, up to 6 days the plain flavour (daily partitions) had dropped, so the
-- same analytics query over those days answered differently. Daily chunks, like positions and predictions,
-- make every cut a day boundary. Only chunks made from now on are daily; older ones age out as before.
SELECT set_chunk_time_interval('stop_events', INTERVAL '1 day');
SELECT set_chunk_time_interval('rejected_pings', INTERVAL '1 day');

-- The cut as a UTC day, as in the plain flavour: 002's (now() - horizon)::date took the session's time
-- zone, so an operator's session away from UTC kept or dropped a day of stop events more.
CREATE OR REPLACE FUNCTION smartbus_drop_old_partitions(keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := 0;
    n integer;
    cutoff date := (now() AT TIME ZONE 'UTC')::date - keep_days;
    cutoff_ts timestamptz := cutoff::timestamp AT TIME ZONE 'UTC';
BEGIN
    SELECT count(*) INTO n FROM drop_chunks('positions', older_than => cutoff_ts);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('stop_events', older_than => cutoff);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('predictions', older_than => cutoff_ts);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('rejected_pings', older_than => cutoff_ts);
    dropped := dropped + n;
    RETURN dropped;
END $$;
COMMENT ON FUNCTION smartbus_drop_old_partitions(integer) IS
    'Drops the rows of every day (UTC) more than keep_days before today, in whole chunks; returns how many.';
