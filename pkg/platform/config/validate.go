package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// namespaceName is a Kubernetes namespace name (an RFC 1123 label).
var namespaceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ErrInvalid matches every error from Load and Validate.
var ErrInvalid = errors.New("invalid config")

// ExitCode is the process exit code for a configuration error
// (docs/configuration.md#exit-codes, EX_USAGE). Errors from Load report it
// through their ExitCode method, so lifecycle.CodeFor maps them without
// importing this package.
const ExitCode = 64

// Problem is one bad key.
type Problem struct {
	Key string
	Msg string
}

// String names the key in both its file and its environment form, so the
// operator finds it whichever way they set it.
func (p Problem) String() string {
	return fmt.Sprintf("%s (%s): %s", p.Key, EnvName(p.Key), p.Msg)
}

// Error lists every problem found, not just the first, so one restart fixes all.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// ExitCode implements the lifecycle exit-code convention.
func (e *Error) ExitCode() int { return ExitCode }

// ParseLevel maps a log.level value to a slog level. It accepts the
// original's names case-insensitively, "trace" as debug (slog has nothing
// finer), "warning" as warn, and an EnvFilter-style directive list such as
// "info,hyper=warn" by taking its bare level, so RUST_LOG-style values from
// an existing deployment keep working.
func ParseLevel(s string) (slog.Level, error) {
	var bare []string
	for d := range strings.SplitSeq(s, ",") {
		d = strings.TrimSpace(d)
		if d != "" && !strings.Contains(d, "=") {
			bare = append(bare, d)
		}
	}
	if len(bare) != 1 {
		return 0, fmt.Errorf("must be one of trace, debug, info, warn, error, got %q", s)
	}
	switch strings.ToLower(bare[0]) {
	case "trace", "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("must be one of trace, debug, info, warn, error, got %q", s)
}

// SlogLevel is the parsed level, info when the value is invalid (Load
// rejects invalid values, so that only happens for hand-built Settings).
func (l Log) SlogLevel() slog.Level {
	lv, err := ParseLevel(l.Level)
	if err != nil {
		return slog.LevelInfo
	}
	return lv
}

// JSON reports whether log.format asks for JSON (case-insensitive).
func (l Log) JSON() bool { return strings.EqualFold(strings.TrimSpace(l.Format), "json") }

// Validate checks every key and reports all problems at once. Messages never
// contain the value of a secret or a URL (which may carry a password).
func (s Settings) Validate() error {
	var v validator

	if _, err := ParseLevel(s.Log.Level); err != nil {
		v.add("log.level", err.Error())
	}
	if f := strings.ToLower(strings.TrimSpace(s.Log.Format)); f != "text" && f != "json" {
		v.add("log.format", fmt.Sprintf("must be text or json, got %q", s.Log.Format))
	}

	v.url("database.url", s.Database.URL, "postgres", "postgresql")
	if s.Database.Schema != "" {
		if msg := schemaProblem(s.Database.Schema); msg != "" {
			v.add("database.schema", msg)
		}
	}
	v.positive("database.max_open_conns", s.Database.MaxOpenConns)
	v.nonNegative("database.max_idle_conns", s.Database.MaxIdleConns)
	v.nonNegative("database.conn_max_idle_seconds", s.Database.ConnMaxIdleSeconds)         // 0: never closed for idleness
	v.nonNegative("database.conn_max_lifetime_seconds", s.Database.ConnMaxLifetimeSeconds) // 0: unlimited
	v.positive("http.max_in_flight", s.HTTP.MaxInFlight)
	v.nonNegative("http.queue_wait_millis", s.HTTP.QueueWaitMillis)
	v.url("redis.url", s.Redis.URL, "redis", "rediss", "unix")
	v.redisTopology(s.Redis)

	v.pak(s.PAK)

	v.hex64("broker.pak_hash", s.Broker.PakHash)
	v.hex64("broker.webhook_encryption_key", s.Broker.WebhookEncryptionKey.Reveal())
	v.positive("broker.diagnostic_cleanup_interval_seconds", s.Broker.DiagnosticCleanupIntervalSeconds)
	v.positive("broker.diagnostic_max_age_hours", s.Broker.DiagnosticMaxAgeHours)
	v.positive("broker.webhook_delivery_interval_seconds", s.Broker.WebhookDeliveryIntervalSeconds)
	v.positive("broker.webhook_delivery_batch_size", s.Broker.WebhookDeliveryBatchSize)
	v.positive("broker.webhook_cleanup_retention_days", s.Broker.WebhookCleanupRetentionDays)
	v.positive("broker.audit_log_retention_days", s.Broker.AuditLogRetentionDays)
	v.nonNegative("broker.auth_cache_ttl_seconds", s.Broker.AuthCacheTTLSeconds) // 0 disables the cache
	v.positive("broker.idempotency_key_ttl_hours", s.Broker.IdempotencyKeyTTLHours)
	v.between("broker.telemetry_retention_seconds", s.Broker.TelemetryRetentionSeconds, 1, 21600)
	v.positive("broker.telemetry_max_rows_per_stack", s.Broker.TelemetryMaxRowsPerStack)
	v.positive("broker.telemetry_sweep_interval_seconds", s.Broker.TelemetrySweepIntervalSeconds)

	v.nonNegative("cors.max_age_seconds", s.CORS.MaxAgeSeconds)

	v.telemetry("telemetry", s.Telemetry.Enabled, s.Telemetry.OTLPEndpoint, s.Telemetry.ServiceName, s.Telemetry.SamplingRate)
	for _, c := range []struct {
		name string
		o    TelemetryOverride
	}{{"broker", s.Telemetry.Broker}, {"agent", s.Telemetry.Agent}} {
		p := "telemetry." + c.name
		if c.o.OTLPEndpoint != nil {
			v.url(p+".otlp_endpoint", *c.o.OTLPEndpoint, "http", "https")
		}
		if c.o.ServiceName != nil && strings.TrimSpace(*c.o.ServiceName) == "" {
			v.add(p+".service_name", "must not be empty")
		}
		if c.o.SamplingRate != nil {
			v.rate(p+".sampling_rate", *c.o.SamplingRate)
		}
	}

	v.hostPort("http.addr", s.HTTP.Addr)
	v.positive64("http.max_body_bytes", s.HTTP.MaxBodyBytes)
	v.positive("http.shutdown_timeout_seconds", s.HTTP.ShutdownTimeoutSeconds)
	for _, p := range s.HTTP.TrustedProxies {
		if !validProxy(p) {
			v.add("http.trusted_proxies", fmt.Sprintf("%q is neither an IP address nor a CIDR", p))
		}
	}

	v.url("auth.url", s.Auth.URL, "http", "https")
	v.hostPort("auth.addr", s.Auth.Addr)
	v.url("templating.url", s.Templating.URL, "http", "https")
	v.hostPort("templating.addr", s.Templating.Addr)
	v.positive("templating.render_timeout_millis", s.Templating.RenderTimeoutMillis)
	v.positive("templating.max_output_bytes", s.Templating.MaxOutputBytes)
	v.hostPort("scheduler.addr", s.Scheduler.Addr)
	v.positive("scheduler.concurrency", s.Scheduler.Concurrency)
	v.positive("scheduler.maintenance_interval_seconds", s.Scheduler.MaintenanceIntervalSeconds)
	v.positive("scheduler.schedule_interval_seconds", s.Scheduler.ScheduleIntervalSeconds)
	v.positive("scheduler.rollout_interval_seconds", s.Scheduler.RolloutIntervalSeconds)
	v.positive("scheduler.audit_cleanup_interval_seconds", s.Scheduler.AuditCleanupIntervalSeconds)
	v.hostPort("webhook_dispatch.addr", s.WebhookDispatch.Addr)
	v.positive("webhook_dispatch.concurrency", s.WebhookDispatch.Concurrency)
	v.positive("webhook_dispatch.per_host_concurrency", s.WebhookDispatch.PerHostConcurrency)
	v.positive("auth.failure_limit", s.Auth.FailureLimit)
	v.positive("auth.failure_window_seconds", s.Auth.FailureWindowSeconds)

	v.url("agent.broker_url", s.Agent.BrokerURL, "http", "https")
	v.positive("agent.polling_interval", s.Agent.PollingInterval)
	v.nonNegative("agent.max_retries", s.Agent.MaxRetries)
	v.nonNegative("agent.max_event_message_retries", s.Agent.MaxEventMessageRetries)
	v.nonNegative("agent.event_message_retry_delay", s.Agent.EventMessageRetryDelay)
	if s.Agent.HealthPort < 1 || s.Agent.HealthPort > 65535 {
		v.add("agent.health_port", fmt.Sprintf("must be a port between 1 and 65535, got %d", s.Agent.HealthPort))
	}
	v.positive("agent.deployment_health_interval", s.Agent.DeploymentHealthInterval)
	v.nonNegative("agent.drift_check_interval", s.Agent.DriftCheckInterval) // 0 disables
	if m := strings.ToLower(strings.TrimSpace(s.Agent.DriftMode)); m != "correct" && m != "report" {
		v.add("agent.drift_mode", fmt.Sprintf("must be correct or report, got %q", s.Agent.DriftMode))
	}
	if s.Agent.OutboxMaxBytes < 4096 {
		v.add("agent.outbox_max_bytes", fmt.Sprintf("must be at least 4096, got %d", s.Agent.OutboxMaxBytes))
	}
	v.between("agent.stack_concurrency", s.Agent.StackConcurrency, 1, 64)
	v.nonNegative("agent.shutdown_grace_seconds", s.Agent.ShutdownGraceSeconds)
	v.between("agent.target_state_wait_seconds", s.Agent.TargetStateWaitSeconds, 0, 60)
	v.positive("agent.diagnostics_poll_interval", s.Agent.DiagnosticsPollInterval)
	v.between("agent.diagnostics_log_lines", s.Agent.DiagnosticsLogLines, 1, 10000)
	if !(s.Agent.KubeQPS <= 100000) { // also rejects NaN
		v.add("agent.kube_qps", fmt.Sprintf("must be at most 100000, got %v", s.Agent.KubeQPS))
	}
	v.between("agent.kube_burst", s.Agent.KubeBurst, 1, 100000)
	v.positive("agent.work_order_poll_interval", s.Agent.WorkOrderPollInterval)
	v.between("agent.work_order_concurrency", s.Agent.WorkOrderConcurrency, 1, 64)
	v.positive("agent.work_order_timeout_seconds", s.Agent.WorkOrderTimeoutSeconds)
	v.positive("agent.webhook_poll_interval", s.Agent.WebhookPollInterval)
	v.between("agent.webhook_concurrency", s.Agent.WebhookConcurrency, 1, 100)
	v.between("agent.max_log_tails", s.Agent.MaxLogTails, 1, 10000)
	v.between("agent.kube_event_uid_cache_cap", s.Agent.KubeEventUIDCacheCap, 1, 10000000)
	if ns := s.Agent.WatchNamespace; ns != "" && (len(ns) > 63 || !namespaceName.MatchString(ns)) {
		v.add("agent.watch_namespace", fmt.Sprintf("must be a namespace name, got %q", ns))
	}

	if s.TLS.Enabled {
		if s.TLS.CertPath == "" {
			v.add("tls.cert_path", "must be set when tls.enabled is true")
		}
		if s.TLS.KeyPath == "" {
			v.add("tls.key_path", "must be set when tls.enabled is true")
		}
	}

	if len(v.problems) == 0 {
		return nil
	}
	return &Error{Problems: v.problems}
}

// schemaProblem applies the original's rule (an ASCII letter, then
// [A-Za-z0-9_]) plus PostgreSQL's 63-byte identifier limit, beyond which
// PostgreSQL would silently truncate and two tenants could collide.
func schemaProblem(name string) string {
	if len(name) > 63 {
		return fmt.Sprintf("must be at most 63 characters, got %d", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if i == 0 && !letter {
			return fmt.Sprintf("must start with an ASCII letter, got %q", name)
		}
		if !letter && !(c >= '0' && c <= '9') && c != '_' {
			return fmt.Sprintf("may contain only letters, digits and underscores, got %q", name)
		}
	}
	return ""
}

type validator struct{ problems []Problem }

func (v *validator) add(key, msg string) {
	v.problems = append(v.problems, Problem{Key: key, Msg: msg})
}

func (v *validator) positive(key string, n int) {
	if n <= 0 {
		v.add(key, fmt.Sprintf("must be greater than 0, got %d", n))
	}
}

func (v *validator) positive64(key string, n int64) {
	if n <= 0 {
		v.add(key, fmt.Sprintf("must be greater than 0, got %d", n))
	}
}

func (v *validator) between(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(key, fmt.Sprintf("must be between %d and %d, got %d", lo, hi, n))
	}
}

func (v *validator) nonNegative(key string, n int) {
	if n < 0 {
		v.add(key, fmt.Sprintf("must not be negative, got %d", n))
	}
}

func (v *validator) rate(key string, r float64) {
	if !(r >= 0 && r <= 1) { // also rejects NaN
		v.add(key, fmt.Sprintf("must be between 0 and 1, got %v", r))
	}
}

// hex64 checks an optional 32-byte hex value; the value itself is a secret
// or a hash and is never echoed.
func (v *validator) hex64(key, s string) {
	if s == "" {
		return
	}
	if len(s) != 64 {
		v.add(key, fmt.Sprintf("must be 64 hex characters, got %d characters", len(s)))
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') {
			v.add(key, "must be 64 hex characters")
			return
		}
	}
}

// url checks scheme and shape without echoing the value, which may hold a
// password.
func (v *validator) url(key, raw string, schemes ...string) {
	if strings.TrimSpace(raw) == "" {
		v.add(key, "must not be empty")
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		v.add(key, "is not a valid URL")
		return
	}
	ok := false
	for _, s := range schemes {
		if strings.EqualFold(u.Scheme, s) {
			ok = true
		}
	}
	if !ok {
		v.add(key, fmt.Sprintf("must be a %s:// URL", strings.Join(schemes, ":// or ")))
		return
	}
	// PostgreSQL allows an empty host (a Unix socket via ?host=); unix:// for
	// Redis names a path. Everything else needs a host.
	if u.Host == "" && !strings.HasPrefix(u.Scheme, "postgres") && u.Scheme != "unix" {
		v.add(key, "must name a host")
	}
}

// redisTopology checks the Sentinel and Cluster keys: one topology at a
// time, complete, and addresses that are host:port.
func (v *validator) redisTopology(r Redis) {
	master := strings.TrimSpace(r.SentinelMaster)
	switch {
	case master != "" && len(r.ClusterAddrs) > 0:
		v.add("redis.cluster_addrs", "must be empty when redis.sentinel_master is set (Sentinel or Cluster, not both)")
	case master != "" && len(r.SentinelAddrs) == 0:
		v.add("redis.sentinel_addrs", "must name at least one sentinel when redis.sentinel_master is set")
	case master == "" && len(r.SentinelAddrs) > 0:
		v.add("redis.sentinel_master", "must be set when redis.sentinel_addrs is")
	case master == "" && !r.SentinelPassword.IsZero():
		v.add("redis.sentinel_password", "only applies with redis.sentinel_master")
	}
	for _, a := range r.SentinelAddrs {
		v.hostPort("redis.sentinel_addrs", a)
	}
	for _, a := range r.ClusterAddrs {
		v.hostPort("redis.cluster_addrs", a)
	}
	if len(r.ClusterAddrs) > 0 {
		// A cluster has only database 0.
		if u, err := url.Parse(r.URL); err == nil && strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0" {
			v.add("redis.url", "must name database 0 (or none) with redis.cluster_addrs: Redis Cluster has no other database")
		}
	}
}

func (v *validator) hostPort(key, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, fmt.Sprintf("must be host:port, got %q", addr))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(key, fmt.Sprintf("must have a port between 0 and 65535, got %q", port))
	}
}

func (v *validator) telemetry(p string, enabled bool, endpoint, service string, rate float64) {
	// The endpoint only matters when tracing is on, but a typo should not
	// wait until someone flips the switch in production.
	if endpoint != "" || enabled {
		v.url(p+".otlp_endpoint", endpoint, "http", "https")
	}
	if strings.TrimSpace(service) == "" {
		v.add(p+".service_name", "must not be empty")
	}
	v.rate(p+".sampling_rate", rate)
}

// pak keeps generated keys parseable and strong: the PAK is split on "_",
// so neither prefix may contain one, and fewer than 16 random bytes would
// make the long token guessable.
func (v *validator) pak(p PAK) {
	if p.Prefix == "" || !alnum(p.Prefix) {
		v.add("pak.prefix", fmt.Sprintf("must be non-empty letters and digits, got %q", p.Prefix))
	}
	if !alnum(p.ShortTokenPrefix) {
		v.add("pak.short_token_prefix", fmt.Sprintf("must be letters and digits, got %q", p.ShortTokenPrefix))
	}
	if p.ShortTokenLength <= len(p.ShortTokenPrefix) || p.ShortTokenLength > 64 {
		v.add("pak.short_token_length", fmt.Sprintf("must be between %d and 64 (it includes pak.short_token_prefix), got %d", len(p.ShortTokenPrefix)+1, p.ShortTokenLength))
	}
	if p.LongTokenLength < 16 || p.LongTokenLength > 128 {
		v.add("pak.long_token_length", fmt.Sprintf("must be between 16 and 128 random bytes, got %d", p.LongTokenLength))
	}
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// validProxy accepts what gin's SetTrustedProxies accepts: an IP or a CIDR.
func validProxy(p string) bool {
	p = strings.TrimSpace(p)
	if _, _, err := net.ParseCIDR(p); err == nil {
		return true
	}
	return net.ParseIP(p) != nil
}
