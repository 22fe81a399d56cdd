-- The short token of every PAK issued from now on, keyed by the PAK's hash,
-- so verification can check that the short token presented matches the one
-- issued (the stored hash covers only the long token, as in the original).
-- Hashes without a row (pinned via broker.pak_hash, or issued before this
-- migration) are verified on the long token alone.
CREATE TABLE pak_short_tokens (
    pak_hash    text PRIMARY KEY,
    short_token text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
