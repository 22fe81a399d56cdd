-- Stack telemetry (docs/telemetry.md): pod log lines (and log gaps, stored
-- as rows of kind 'gap' so GET /stacks/{id}/logs shows them) and Kubernetes
-- events posted by agents. A short-lived window, not a log store: the
-- work-order-scheduler's housekeeping deletes rows by created_at (the
-- server's clock, never the agent's) past broker.telemetry_retention_seconds
-- (at most 6 h) and the oldest rows of a stack beyond
-- broker.telemetry_max_rows_per_stack. seq orders rows written in one
-- transaction (same created_at).

CREATE TABLE IF NOT EXISTS stack_pod_logs (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    stack_id      uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    agent_id      uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    kind          text NOT NULL DEFAULT 'line' CHECK (kind IN ('line', 'gap')),
    namespace     text NOT NULL DEFAULT '',
    pod           text NOT NULL DEFAULT '',
    container     text NOT NULL DEFAULT '',
    ts            timestamptz NOT NULL,
    line          text NOT NULL,
    dropped_count bigint,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stack_pod_logs_gap CHECK ((kind = 'gap') = (reason IS NOT NULL AND dropped_count IS NOT NULL))
);
-- Reads (a stack's window, newest first), the row cap and the oldest row.
CREATE INDEX IF NOT EXISTS idx_stack_pod_logs_stack_created ON stack_pod_logs (stack_id, created_at, seq);
-- The retention sweep.
CREATE INDEX IF NOT EXISTS idx_stack_pod_logs_created ON stack_pod_logs (created_at);

CREATE TABLE IF NOT EXISTS stack_k8s_events (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    stack_id        uuid NOT NULL REFERENCES stacks(id) ON DELETE CASCADE,
    agent_id        uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    observed_at     timestamptz NOT NULL,
    reason          text NOT NULL,
    message         text NOT NULL,
    event_type      text NOT NULL,
    source          text,
    involved_object jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_stack_k8s_events_stack_created ON stack_k8s_events (stack_id, created_at, seq);
CREATE INDEX IF NOT EXISTS idx_stack_k8s_events_created ON stack_k8s_events (created_at);
