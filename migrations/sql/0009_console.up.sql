-- Indexes of the fleet console (docs/console.md). Each sort of the fleet
-- page reads an index range and stops after one page (name and cluster use
-- unique_agent_cluster and this cluster index); the per-agent summary finds
-- an agent's latest event on an object and its failures without scanning
-- all its events; the "failing" count reads only failing health rows.
CREATE INDEX idx_agents_console_cluster ON agents (cluster_name, name) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_console_heartbeat ON agents (last_heartbeat NULLS FIRST, id) WHERE deleted_at IS NULL;
CREATE INDEX idx_agents_console_created ON agents (created_at, id) WHERE deleted_at IS NULL;
CREATE INDEX idx_agent_events_console_latest ON agent_events (agent_id, deployment_object_id, created_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX idx_agent_events_console_failure ON agent_events (agent_id, deployment_object_id)
    WHERE deleted_at IS NULL AND status = 'FAILURE';
CREATE INDEX idx_deployment_health_console_failing ON deployment_health (agent_id)
    WHERE status IN ('failing', 'degraded');
