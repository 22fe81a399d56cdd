DROP INDEX IF EXISTS idx_deployment_health_console_failing;
DROP INDEX IF EXISTS idx_agent_events_console_failure;
DROP INDEX IF EXISTS idx_agent_events_console_latest;
DROP INDEX IF EXISTS idx_agents_console_created;
DROP INDEX IF EXISTS idx_agents_console_heartbeat;
DROP INDEX IF EXISTS idx_agents_console_cluster;
