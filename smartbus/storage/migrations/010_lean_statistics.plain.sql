-- Column statistics only where a query filters, joins or sorts, and from a small sample, on the two tables written
-- for every ping: see 010_lean_statistics.timescale.sql for why. On a partitioned table ALTER TABLE sets the
-- targets on the partitions there now; PostgreSQL does not pass them to partitions made later, so
-- smartbus_ensure_partition now copies the parent's targets onto each partition it makes (as TimescaleDB does for
-- chunks).
ALTER TABLE positions
    ALTER COLUMN latitude SET STATISTICS 0, ALTER COLUMN longitude SET STATISTICS 0,
    ALTER COLUMN trip_id SET STATISTICS 0, ALTER COLUMN route_id SET STATISTICS 0,
    ALTER COLUMN service_date SET STATISTICS 0, ALTER COLUMN shape_dist SET STATISTICS 0,
    ALTER COLUMN offset_m SET STATISTICS 0, ALTER COLUMN delay_s SET STATISTICS 0,
    ALTER COLUMN status SET STATISTICS 0, ALTER COLUMN speed SET STATISTICS 0,
    ALTER COLUMN bearing SET STATISTICS 0, ALTER COLUMN feed_version SET STATISTICS 0,
    ALTER COLUMN vehicle_id SET STATISTICS 10, ALTER COLUMN ts SET STATISTICS 10;
ALTER TABLE predictions
    ALTER COLUMN vehicle_id SET STATISTICS 0, ALTER COLUMN route_id SET STATISTICS 0,
    ALTER COLUMN predicted_arrival SET STATISTICS 0, ALTER COLUMN scheduled_arrival SET STATISTICS 0,
    ALTER COLUMN method SET STATISTICS 0, ALTER COLUMN uncertainty_s SET STATISTICS 0,
    ALTER COLUMN feed_version SET STATISTICS 0,
    ALTER COLUMN trip_id SET STATISTICS 10, ALTER COLUMN stop_sequence SET STATISTICS 10,
    ALTER COLUMN service_date SET STATISTICS 10, ALTER COLUMN made_at SET STATISTICS 10,
    ALTER COLUMN stop_id SET STATISTICS 10;

-- As in 002, and then the parent's statistics targets (those set, -1 being the default) onto the new partition.
CREATE OR REPLACE FUNCTION smartbus_ensure_partition(parent regclass, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    parent_name text := (SELECT relname FROM pg_class WHERE oid = parent);
    partition_name text := parent_name || '_p' || to_char(day, 'YYYYMMDD');
    key_type regtype;
    low text;
    high text;
    targets text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('smartbus_partition:' || partition_name));
    IF to_regclass(quote_ident(partition_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    SELECT a.atttypid::regtype INTO key_type
      FROM pg_partitioned_table p
      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
     WHERE p.partrelid = parent;
    IF key_type = 'date'::regtype THEN
        low := quote_literal(day::text);
        high := quote_literal((day + 1)::text);
    ELSE
        low := quote_literal(day::text || ' 00:00:00+00');
        high := quote_literal((day + 1)::text || ' 00:00:00+00');
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%s) TO (%s)',
                   partition_name, parent, low, high);
    SELECT string_agg(format('ALTER COLUMN %I SET STATISTICS %s', attname, attstattarget), ', ') INTO targets
      FROM pg_attribute
     WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0;
    IF targets IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %I %s', partition_name, targets);  -- one statement for every column
    END IF;
    RETURN true;
END $$;
