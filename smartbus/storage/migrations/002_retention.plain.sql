-- Partition upkeep for the plain flavour: daily partitions made on demand, old ones dropped.

-- Make the partition of `parent` that holds `day` (UTC days for timestamptz keys), unless it exists.
-- Two writers may ask for the same day at once: a transaction-scoped advisory lock on the
-- partition's name serialises them, so the second one finds the table made and does nothing.
CREATE FUNCTION smartbus_ensure_partition(parent regclass, day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    parent_name text := (SELECT relname FROM pg_class WHERE oid = parent);
    partition_name text := parent_name || '_p' || to_char(day, 'YYYYMMDD');
    key_type regtype;
    low text;
    high text;
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
    RETURN true;
END $$;

-- Drop every daily partition of our tables whose day is more than keep_days before today (UTC).
-- Returns how many partitions were dropped.
CREATE FUNCTION smartbus_drop_old_partitions(keep_days integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
    cutoff date := (now() AT TIME ZONE 'UTC')::date - keep_days;
BEGIN
    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
          JOIN pg_class p ON p.oid = i.inhparent
         WHERE p.relname IN ('positions', 'stop_events', 'predictions', 'rejected_pings')
           AND c.relname ~ '_p[0-9]{8}$'
    LOOP
        IF to_date(right(part.relname, 8), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END $$;
