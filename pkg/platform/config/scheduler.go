package config

// Scheduler configures the work-order-scheduler service: the asynq worker
// and periodic scheduler that release retries, expire stale claims, fire
// cron schedules and run housekeeping. The three intervals are
// hot-reloadable; diagnostics housekeeping runs every
// broker.diagnostic_cleanup_interval_seconds.
type Scheduler struct {
	// Addr is the listen address of /healthz, /readyz and /metrics.
	Addr string `koanf:"addr"`
	// Concurrency is how many tasks one replica runs at once.
	Concurrency int `koanf:"concurrency"`
	// MaintenanceIntervalSeconds: how often stale claims are expired and
	// due retries whose timer was lost are released (the original's fixed
	// 10 s work-order maintenance).
	MaintenanceIntervalSeconds int `koanf:"maintenance_interval_seconds"`
	// ScheduleIntervalSeconds: how often cron schedules are evaluated; a
	// window fires at most this long after it is due.
	ScheduleIntervalSeconds int `koanf:"schedule_interval_seconds"`
	// AuditCleanupIntervalSeconds: how often audit entries older than
	// broker.audit_log_retention_days are deleted.
	AuditCleanupIntervalSeconds int `koanf:"audit_cleanup_interval_seconds"`
	// RolloutIntervalSeconds: how often progressing rollouts are advanced
	// (docs/rollouts.md#advancing); agent reports also wake them at once.
	RolloutIntervalSeconds int `koanf:"rollout_interval_seconds"`
}
