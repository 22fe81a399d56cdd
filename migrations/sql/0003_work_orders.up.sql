-- Work orders (docs/work-orders.md): one-shot tasks claimed by exactly
-- one eligible agent, retried with exponential backoff
-- (docs/work-orders.md#backoff), moved
-- to work_order_log when they finish. Added beyond the original: cron
-- schedules that stamp out work orders, and progress reports from the agent
-- that running orders show and that keep a long claim alive.

-- schedules -------------------------------------------------------------------
-- A schedule is a cron expression in a time zone plus a work-order template.
-- anchor_at is the earliest instant whose window may fire: set at creation,
-- on enable and when the expression or zone changes, so windows that passed
-- while a schedule did not exist (or was off) never fire. last_scheduled_at
-- is the window most recently fired (or skipped by the concurrency policy).
CREATE TABLE work_order_schedules (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    name                  varchar(255) NOT NULL,
    description           text,
    cron_expression       varchar(255) NOT NULL,
    time_zone             varchar(64) NOT NULL DEFAULT 'UTC',
    enabled               boolean NOT NULL DEFAULT true,
    concurrency_policy    varchar(10) NOT NULL DEFAULT 'Forbid'
                          CHECK (concurrency_policy IN ('Forbid', 'Allow', 'Replace')),
    work_type             varchar(50) NOT NULL,
    yaml_content          text NOT NULL,
    max_retries           integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    backoff_seconds       integer NOT NULL DEFAULT 60 CHECK (backoff_seconds > 0),
    claim_timeout_seconds integer NOT NULL DEFAULT 3600 CHECK (claim_timeout_seconds > 0),
    -- {"agent_ids": [...], "labels": [...], "annotations": {"k": "v"}}
    targeting             jsonb NOT NULL,
    anchor_at             timestamptz NOT NULL DEFAULT now(),
    last_scheduled_at     timestamptz
);
CREATE UNIQUE INDEX unique_work_order_schedule_name ON work_order_schedules (name);
CREATE TRIGGER update_work_order_schedules_timestamp BEFORE UPDATE ON work_order_schedules
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- One row per fired window. The unique key is what makes a fire idempotent
-- across scheduler replicas: the second insert of (schedule, window) is a
-- no-op, so at most one work order exists per window.
CREATE TABLE work_order_schedule_runs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    schedule_id   uuid NOT NULL REFERENCES work_order_schedules(id) ON DELETE CASCADE,
    scheduled_at  timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    status        varchar(20) NOT NULL CHECK (status IN ('created', 'skipped')),
    work_order_id uuid,
    message       text,
    CONSTRAINT unique_schedule_run UNIQUE (schedule_id, scheduled_at)
);
-- GET /work-order-schedules/{id}/runs lists newest first; the unique index
-- above serves it backwards.

-- work orders -----------------------------------------------------------------
CREATE TABLE work_orders (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    work_type             varchar(50) NOT NULL,
    yaml_content          text NOT NULL,
    status                varchar(20) NOT NULL DEFAULT 'PENDING'
                          CHECK (status IN ('PENDING', 'CLAIMED', 'RETRY_PENDING')),
    claimed_by            uuid REFERENCES agents(id) ON DELETE SET NULL,
    claimed_at            timestamptz,
    claim_timeout_seconds integer NOT NULL DEFAULT 3600 CHECK (claim_timeout_seconds > 0),
    max_retries           integer NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
    retry_count           integer NOT NULL DEFAULT 0,
    backoff_seconds       integer NOT NULL DEFAULT 60 CHECK (backoff_seconds > 0),
    next_retry_after      timestamptz,
    last_error            text,
    last_error_at         timestamptz,
    schedule_id           uuid REFERENCES work_order_schedules(id) ON DELETE SET NULL,
    scheduled_at          timestamptz,
    progress_message      text,
    progress_percent      smallint CHECK (progress_percent BETWEEN 0 AND 100),
    progress_updated_at   timestamptz,
    CONSTRAINT work_orders_retry_count CHECK (retry_count >= 0 AND retry_count <= max_retries),
    CONSTRAINT claimed_requires_agent CHECK (status <> 'CLAIMED' OR (claimed_by IS NOT NULL AND claimed_at IS NOT NULL)),
    CONSTRAINT retry_requires_time CHECK (status <> 'RETRY_PENDING' OR next_retry_after IS NOT NULL)
);
-- Hot queries: an agent's pending list (oldest first, optionally by type),
-- the admin list (newest first, by status or type), the stale-claim scan,
-- the retry sweep, a schedule's open orders (Forbid/Replace).
CREATE INDEX idx_work_orders_pending ON work_orders (created_at, id) WHERE status = 'PENDING';
CREATE INDEX idx_work_orders_pending_type ON work_orders (work_type, created_at) WHERE status = 'PENDING';
CREATE INDEX idx_work_orders_created ON work_orders (created_at DESC);
CREATE INDEX idx_work_orders_status ON work_orders (status, created_at DESC);
CREATE INDEX idx_work_orders_work_type ON work_orders (work_type, created_at DESC);
CREATE INDEX idx_work_orders_claimed ON work_orders (claimed_at) WHERE status = 'CLAIMED';
CREATE INDEX idx_work_orders_claimed_by ON work_orders (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX idx_work_orders_retry ON work_orders (next_retry_after) WHERE status = 'RETRY_PENDING';
CREATE INDEX idx_work_orders_schedule ON work_orders (schedule_id) WHERE schedule_id IS NOT NULL;
CREATE INDEX idx_work_orders_last_error ON work_orders (last_error_at) WHERE last_error IS NOT NULL;
CREATE TRIGGER update_work_orders_timestamp BEFORE UPDATE ON work_orders
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

-- Targeting, OR'ed within and across kinds (docs/work-orders.md#targeting). The unique
-- keys lead with work_order_id, so they also serve the eligibility probes.
CREATE TABLE work_order_targets (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    work_order_id uuid NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_work_order_target UNIQUE (work_order_id, agent_id)
);
CREATE INDEX idx_work_order_targets_agent ON work_order_targets (agent_id);

CREATE TABLE work_order_labels (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    work_order_id uuid NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    label         varchar(64) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_work_order_label UNIQUE (work_order_id, label)
);
CREATE INDEX idx_work_order_labels_label ON work_order_labels (label);

-- One key may carry several values (UNIQUE over the pair, as the original).
CREATE TABLE work_order_annotations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    work_order_id uuid NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    key           varchar(64) NOT NULL,
    value         varchar(64) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_work_order_annotation UNIQUE (work_order_id, key, value)
);
CREATE INDEX idx_work_order_annotations_kv ON work_order_annotations (key, value);

-- The log: write-once history. id is the work order's id; no targeting is
-- copied. schedule_id has no foreign key because history outlives schedules.
CREATE TABLE work_order_log (
    id                uuid PRIMARY KEY,
    work_type         varchar(50) NOT NULL,
    created_at        timestamptz NOT NULL,
    claimed_at        timestamptz,
    completed_at      timestamptz NOT NULL DEFAULT now(),
    claimed_by        uuid REFERENCES agents(id) ON DELETE SET NULL,
    success           boolean NOT NULL,
    retries_attempted integer NOT NULL DEFAULT 0 CHECK (retries_attempted >= 0),
    result_message    text,
    yaml_content      text NOT NULL,
    schedule_id       uuid,
    scheduled_at      timestamptz
);
CREATE INDEX idx_work_order_log_completed ON work_order_log (completed_at DESC);
CREATE INDEX idx_work_order_log_type ON work_order_log (work_type, completed_at DESC);
CREATE INDEX idx_work_order_log_success ON work_order_log (success, completed_at DESC);
CREATE INDEX idx_work_order_log_claimed_by ON work_order_log (claimed_by, completed_at DESC) WHERE claimed_by IS NOT NULL;
CREATE INDEX idx_work_order_log_schedule ON work_order_log (schedule_id, completed_at DESC) WHERE schedule_id IS NOT NULL;
