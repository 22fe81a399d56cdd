-- The console's agent page lists an agent's newest diagnostics requests of
-- any status (the existing indexes cover pending ones only).
CREATE INDEX IF NOT EXISTS idx_diagnostic_requests_agent_created ON diagnostic_requests (agent_id, created_at DESC);
