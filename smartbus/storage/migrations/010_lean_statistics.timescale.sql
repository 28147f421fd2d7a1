-- Column statistics only where a query filters, joins or sorts, on the two tables written for every ping.
-- ANALYZE (autovacuum runs it on every chunk or partition each time it has grown by a tenth) sorts a sample of
-- every column with a statistics target; on positions that was 14 columns, of which the playback query
-- (smartbus.storage.queries) uses two, and a target of 0 for the rest makes each analyze about four times
-- cheaper. While a day's chunk fills, autovacuum analyzes it every minute, in a burst of CPU next to the
-- pipeline. Kept: positions (vehicle_id, ts), the primary key; predictions, every indexed column, which the
-- accuracy scoring joins on. A target set here can be raised again with ALTER TABLE ... SET STATISTICS.
-- TimescaleDB passes a hypertable's targets to its chunks, those there and those made later.
ALTER TABLE positions
    ALTER COLUMN latitude SET STATISTICS 0, ALTER COLUMN longitude SET STATISTICS 0,
    ALTER COLUMN trip_id SET STATISTICS 0, ALTER COLUMN route_id SET STATISTICS 0,
    ALTER COLUMN service_date SET STATISTICS 0, ALTER COLUMN shape_dist SET STATISTICS 0,
    ALTER COLUMN offset_m SET STATISTICS 0, ALTER COLUMN delay_s SET STATISTICS 0,
    ALTER COLUMN status SET STATISTICS 0, ALTER COLUMN speed SET STATISTICS 0,
    ALTER COLUMN bearing SET STATISTICS 0, ALTER COLUMN feed_version SET STATISTICS 0;
ALTER TABLE predictions
    ALTER COLUMN vehicle_id SET STATISTICS 0, ALTER COLUMN route_id SET STATISTICS 0,
    ALTER COLUMN predicted_arrival SET STATISTICS 0, ALTER COLUMN scheduled_arrival SET STATISTICS 0,
    ALTER COLUMN method SET STATISTICS 0, ALTER COLUMN uncertainty_s SET STATISTICS 0,
    ALTER COLUMN feed_version SET STATISTICS 0;
