-- Idempotency keys (docs/idempotency.md): the first request with an
-- Idempotency-Key stores its response here in the same transaction as its
-- effect; a retry with the same key and fingerprint gets that response back.
-- Keys are scoped per caller identity ("admin", "agent:<id>",
-- "generator:<id>"), so one caller's key never finds another's response.

CREATE TABLE idempotency_keys (
    scope         varchar(100) NOT NULL,
    key           varchar(255) NOT NULL,
    -- SHA-256 of method, path and body of the first request.
    fingerprint   bytea NOT NULL,
    method        varchar(10) NOT NULL,
    path          text NOT NULL,
    status_code   integer NOT NULL,
    content_type  varchar(255) NOT NULL DEFAULT '',
    -- The response body sealed with AES-256-GCM (it may hold a PAK shown once).
    body          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
-- The maintenance sweep deletes by age.
CREATE INDEX idx_idempotency_keys_created ON idempotency_keys (created_at);
