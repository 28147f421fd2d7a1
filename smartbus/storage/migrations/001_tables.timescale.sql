-- Core tables, TimescaleDB flavour: the same tables and columns as the plain flavour, as hypertables.
-- Each unique key holds the hypertable's time column, as TimescaleDB requires; stop_events is
-- partitioned by service_date (part of its natural key) so a replayed event lands on the same row.

CREATE TABLE positions (
    vehicle_id    text             NOT NULL,
    ts            timestamptz      NOT NULL,
    latitude      double precision NOT NULL,
    longitude     double precision NOT NULL,
    trip_id       text,
    route_id      text,
    service_date  date,
    shape_dist    double precision,  -- metres along the trip's shape
    offset_m      double precision,  -- metres from the shape
    delay_s       double precision,  -- seconds, positive = late
    status        text             NOT NULL,
    speed         double precision,  -- m/s
    bearing       double precision,  -- degrees clockwise from north
    feed_version  text,
    PRIMARY KEY (vehicle_id, ts)
);
SELECT create_hypertable('positions', 'ts', chunk_time_interval => INTERVAL '1 day');

CREATE TABLE stop_events (
    trip_id            text        NOT NULL,
    stop_sequence      integer     NOT NULL,
    service_date       date        NOT NULL,
    stop_id            text        NOT NULL,
    vehicle_id         text        NOT NULL,
    route_id           text,
    arrival_time       timestamptz NOT NULL,
    departure_time     timestamptz,
    scheduled_arrival  timestamptz,
    interpolated       boolean     NOT NULL,
    feed_version       text,
    PRIMARY KEY (trip_id, stop_sequence, service_date)
);
SELECT create_hypertable('stop_events', 'service_date', chunk_time_interval => INTERVAL '7 days');
CREATE INDEX stop_events_stop ON stop_events (stop_id, arrival_time);
CREATE INDEX stop_events_vehicle ON stop_events (vehicle_id, arrival_time);

CREATE TABLE predictions (
    trip_id            text             NOT NULL,
    stop_sequence      integer          NOT NULL,
    service_date       date             NOT NULL,
    made_at            timestamptz      NOT NULL,
    stop_id            text             NOT NULL,
    vehicle_id         text             NOT NULL,
    route_id           text,
    predicted_arrival  timestamptz      NOT NULL,
    scheduled_arrival  timestamptz,
    method             text             NOT NULL,
    uncertainty_s      double precision NOT NULL,  -- one standard deviation, seconds
    feed_version       text,
    PRIMARY KEY (trip_id, stop_sequence, service_date, made_at)
);
SELECT create_hypertable('predictions', 'made_at', chunk_time_interval => INTERVAL '1 day');
CREATE INDEX predictions_stop ON predictions (stop_id, made_at);

CREATE TABLE rejected_pings (
    received_at   timestamptz NOT NULL,
    reason        text        NOT NULL,
    detail        text        NOT NULL,
    payload       text        NOT NULL,
    payload_md5   uuid        NOT NULL,  -- so a replayed rejection is stored once
    PRIMARY KEY (received_at, payload_md5)
);
SELECT create_hypertable('rejected_pings', 'received_at', chunk_time_interval => INTERVAL '7 days');

-- Compression (TimescaleDB 2.x): old chunks become columnar, segmented by the column queries filter on.
-- segmentby + orderby cover each primary key, so a late upsert into a compressed chunk can check the
-- key batch by batch instead of decompressing the whole chunk.
ALTER TABLE positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'vehicle_id',
    timescaledb.compress_orderby = 'ts'
);
ALTER TABLE stop_events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'trip_id',
    timescaledb.compress_orderby = 'service_date, stop_sequence'
);
ALTER TABLE predictions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'trip_id',
    timescaledb.compress_orderby = 'service_date, stop_sequence, made_at'
);
