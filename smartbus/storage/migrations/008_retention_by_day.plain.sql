-- Retention by the day (see 008_retention_by_day.timescale.sql): the plain flavour's partitions are daily and
-- its cut a UTC day since 002, so there is nothing to change here but to state the contract both now keep.
COMMENT ON FUNCTION smartbus_drop_old_partitions(integer) IS
    'Drops the rows of every day (UTC) more than keep_days before today, in whole partitions; returns how many.';
