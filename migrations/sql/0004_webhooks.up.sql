-- Webhooks (docs/webhooks.md): subscriptions whose URL, auth header and
-- signing secret are encrypted at rest (AES-256-GCM, 0x01 ‖ nonce ‖
-- ciphertext+tag, docs/webhooks.md#encryption-key), and one delivery row per
-- (event, subscription) created by the outbox relay of webhook-dispatch.

-- subscriptions -----------------------------------------------------------------
CREATE TABLE webhook_subscriptions (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    name                     varchar(255) NOT NULL,
    url_encrypted            bytea NOT NULL,
    auth_header_encrypted    bytea,
    -- New: HMAC-SHA256 key for X-Brokkr-Signature (docs/webhooks.md#signature).
    signing_secret_encrypted bytea,
    event_types              text[] NOT NULL CHECK (cardinality(event_types) > 0),
    -- {"agent_id"?, "stack_id"?, "labels"?: {"k": "v"}}; applied at fan-out.
    filters                  jsonb,
    -- NULL: the broker delivers. Non-empty: an agent holding every label
    -- delivers. An empty array is stored as NULL
    -- (docs/compatibility.md#empty-target-labels).
    target_labels            text[] CHECK (target_labels IS NULL OR cardinality(target_labels) > 0),
    enabled                  boolean NOT NULL DEFAULT true,
    -- Retries after the first attempt (docs/webhooks.md#retries).
    max_retries              integer NOT NULL DEFAULT 5 CHECK (max_retries BETWEEN 0 AND 100),
    timeout_seconds          integer NOT NULL DEFAULT 30 CHECK (timeout_seconds BETWEEN 1 AND 300),
    created_by               varchar(255)
);
-- Fan-out reads every enabled subscription; the list is newest first.
CREATE INDEX idx_webhook_subscriptions_enabled ON webhook_subscriptions (created_at) WHERE enabled;
CREATE INDEX idx_webhook_subscriptions_created_at ON webhook_subscriptions (created_at DESC);
CREATE TRIGGER update_webhook_subscriptions_timestamp BEFORE UPDATE ON webhook_subscriptions
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- deliveries --------------------------------------------------------------------
CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    -- The outbox event's id, shared by every delivery of that event.
    event_id         uuid NOT NULL,
    event_type       varchar(100) NOT NULL,
    -- The exact body that is sent (and signed): the event envelope.
    payload          text NOT NULL,
    target_labels    text[],
    status           varchar(20) NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'acquired', 'success', 'failed', 'dead')),
    -- NULL while acquired means the broker (webhook-dispatch) holds it.
    acquired_by      uuid REFERENCES agents(id) ON DELETE SET NULL,
    acquired_until   timestamptz,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_attempt_at  timestamptz,
    next_retry_at    timestamptz,
    last_error       text,
    last_status_code integer,
    -- When a broker-mode delivery was last handed to the queue; the sweep
    -- re-enqueues rows whose queue entry may have been lost.
    enqueued_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    -- Fan-out is idempotent: a replayed event creates no second delivery.
    CONSTRAINT unique_webhook_delivery UNIQUE (event_id, subscription_id),
    CONSTRAINT acquired_has_lease CHECK (status <> 'acquired' OR acquired_until IS NOT NULL),
    CONSTRAINT failed_has_retry_time CHECK (status <> 'failed' OR next_retry_at IS NOT NULL)
);
-- GET /webhooks/{id}/deliveries, newest first (optionally by status).
CREATE INDEX idx_webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at DESC);
-- Agent claims: pending rows whose labels are a subset of the agent's.
CREATE INDEX idx_webhook_deliveries_agent_pending ON webhook_deliveries USING gin (target_labels)
    WHERE status = 'pending' AND target_labels IS NOT NULL;
CREATE INDEX idx_webhook_deliveries_pending ON webhook_deliveries (created_at) WHERE status = 'pending';
-- Retry promotion / lost-retry sweep and lease expiry.
CREATE INDEX idx_webhook_deliveries_failed ON webhook_deliveries (next_retry_at) WHERE status = 'failed';
CREATE INDEX idx_webhook_deliveries_acquired ON webhook_deliveries (acquired_until) WHERE status = 'acquired';
-- Retention cleanup and the dead-letter gauge.
CREATE INDEX idx_webhook_deliveries_terminal ON webhook_deliveries (status, completed_at)
    WHERE status IN ('success', 'dead');
