-- Retention for the TimescaleDB flavour. The policies themselves (background jobs) are set from the
-- settings at start-up (smartbus.storage.migrate.apply_policies); this function gives operators the
-- same manual call as the plain flavour. Returns how many chunks were dropped.
CREATE FUNCTION smartbus_drop_old_partitions(keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    dropped integer := 0;
    n integer;
    horizon interval := make_interval(days => keep_days);
BEGIN
    SELECT count(*) INTO n FROM drop_chunks('positions', older_than => now() - horizon);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('stop_events', older_than => (now() - horizon)::date);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('predictions', older_than => now() - horizon);
    dropped := dropped + n;
    SELECT count(*) INTO n FROM drop_chunks('rejected_pings', older_than => now() - horizon);
    dropped := dropped + n;
    RETURN dropped;
END $$;
