-- API keys for operators and analysts (same in both flavours). The secret part of a key is never
-- stored: only its SHA-256. Keys are 32 random bytes, so a fast hash is enough (no password stretching
-- needed against guessing); the public key_id finds the row without a scan.
CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY,
    secret_hash bytea       NOT NULL,
    name        text        NOT NULL,
    roles       text[]      NOT NULL CHECK (roles <@ ARRAY['rider', 'operator', 'analyst', 'admin']::text[]),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
