-- Indexes of the fleet console (docs/console.md): each sort of the fleet
-- page, and the "failing" filter and count, read an index instead of
-- scanning every agent's events and health rows.
CREATE INDEX idx_agents_console_cluster ON agents (cluster_name, name) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_console_heartbeat ON agents (last_heartbeat) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_console_created ON agents (created_at) WHERE deleted_at IS NULL;
CREATE INDEX idx_deployment_health_console_failing ON deployment_health (agent_id)
    WHERE status IN ('failing', 'degraded');
CREATE INDEX idx_agent_events_console_failure ON agent_events (agent_id, deployment_object_id)
    WHERE deleted_at IS NULL AND status = 'FAILURE';
