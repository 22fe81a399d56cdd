-- Deployment health reported by agents, and on-demand diagnostics.

CREATE TABLE deployment_health (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id             uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    deployment_object_id uuid NOT NULL REFERENCES deployment_objects(id) ON DELETE CASCADE,
    status               varchar(20) NOT NULL CHECK (status IN ('healthy', 'degraded', 'failing', 'unknown')),
    -- A JSON object (docs/compatibility.md#event-payloads): {pods_ready,
    -- pods_total, conditions, resources?}.
    summary              jsonb,
    checked_at           timestamptz NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT unique_agent_deployment_health UNIQUE (agent_id, deployment_object_id)
);
CREATE INDEX idx_deployment_health_object ON deployment_health (deployment_object_id, checked_at DESC);
CREATE TRIGGER update_deployment_health_timestamp BEFORE UPDATE ON deployment_health
    FOR EACH ROW EXECUTE FUNCTION brokkr_touch_updated_at();

CREATE TABLE diagnostic_requests (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id             uuid NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    deployment_object_id uuid NOT NULL REFERENCES deployment_objects(id) ON DELETE CASCADE,
    status               varchar(20) NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'claimed', 'completed', 'failed', 'expired')),
    requested_by         varchar(255),
    created_at           timestamptz NOT NULL DEFAULT now(),
    claimed_at           timestamptz,
    completed_at         timestamptz,
    expires_at           timestamptz NOT NULL
);
CREATE INDEX idx_diagnostic_requests_pending ON diagnostic_requests (agent_id, created_at) WHERE status = 'pending';
CREATE INDEX idx_diagnostic_requests_expires ON diagnostic_requests (expires_at) WHERE status = 'pending';
CREATE INDEX idx_diagnostic_requests_finished ON diagnostic_requests (created_at) WHERE status IN ('completed', 'failed', 'expired');

CREATE TABLE diagnostic_results (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id   uuid NOT NULL UNIQUE REFERENCES diagnostic_requests(id) ON DELETE CASCADE,
    -- JSON documents kept as text: the API returns them as JSON strings, as
    -- the original and its docs (`jq -r .result.pod_statuses | jq .`) expect.
    pod_statuses text NOT NULL,
    events       text NOT NULL,
    log_tails    text,
    error        text,
    collected_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
