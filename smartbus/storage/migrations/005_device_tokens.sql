-- Per-device ingest tokens (same in both flavours). Operators issue and revoke them; a device sends its
-- token with every batch. As with api_keys, only the SHA-256 of the 32-byte random secret is stored, and
-- the public token_id finds the row without a scan. `feed` namespaces the device's vehicle ids, so that
-- several agencies can share one deployment.
CREATE TABLE device_tokens (
    token_id    text        PRIMARY KEY,
    secret_hash bytea       NOT NULL,
    feed        text        NOT NULL,
    vehicle_id  text        NOT NULL,
    note        text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX device_tokens_vehicle ON device_tokens (feed, vehicle_id);
