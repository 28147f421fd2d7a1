-- Core tables, plain PostgreSQL flavour: native range partitioning by day on each table's time column.
-- Partitions are made on demand by smartbus_ensure_partition() (002) before a write; there is no
-- default partition, so a row for a day nobody prepared fails loudly instead of piling up unpruned.

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
) PARTITION BY RANGE (ts);
CREATE INDEX positions_ts_brin ON positions USING brin (ts);

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
) PARTITION BY RANGE (service_date);
CREATE INDEX stop_events_arrival_brin ON stop_events USING brin (arrival_time);
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
) PARTITION BY RANGE (made_at);
CREATE INDEX predictions_made_at_brin ON predictions USING brin (made_at);
CREATE INDEX predictions_stop ON predictions (stop_id, made_at);

CREATE TABLE rejected_pings (
    received_at   timestamptz NOT NULL,
    reason        text        NOT NULL,
    detail        text        NOT NULL,
    payload       text        NOT NULL,
    payload_md5   uuid        NOT NULL,  -- so a replayed rejection is stored once
    PRIMARY KEY (received_at, payload_md5)
) PARTITION BY RANGE (received_at);
CREATE INDEX rejected_pings_received_brin ON rejected_pings USING brin (received_at);
