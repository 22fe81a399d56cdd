// Package config holds Brokkr's settings: the original's sections and keys
// (docs/configuration.md) plus the keys this implementation adds. Loading is
// layered: built-in defaults, then the TOML file named by BROKKR_CONFIG_FILE,
// then BROKKR__SECTION__KEY environment variables.
package config

import "github.com/brokkr-go/brokkr/pkg/platform/secret"

// Settings is the whole configuration tree. The koanf tags are the TOML keys;
// the environment form is BROKKR__<SECTION>__<KEY> upper-cased.
type Settings struct {
	Database  Database  `koanf:"database"`
	Redis     Redis     `koanf:"redis"`
	Log       Log       `koanf:"log"`
	PAK       PAK       `koanf:"pak"`
	Broker    Broker    `koanf:"broker"`
	CORS      CORS      `koanf:"cors"`
	Telemetry Telemetry `koanf:"telemetry"`
	HTTP      HTTP      `koanf:"http"`
	Auth      Auth      `koanf:"auth"`
	// Templating locates the templating service.
	Templating Templating `koanf:"templating"`
	// WebhookDispatch configures the webhook-dispatch worker.
	WebhookDispatch WebhookDispatch `koanf:"webhook_dispatch"`
	// Scheduler configures the work-order-scheduler service.
	Scheduler Scheduler `koanf:"scheduler"`
	Agent     Agent     `koanf:"agent"`
	TLS       TLS       `koanf:"tls"`
}

// Database configures PostgreSQL.
type Database struct {
	URL string `koanf:"url"`
	// Schema, when set, isolates a tenant: every pooled connection gets
	// search_path=<schema> and migrations run inside it.
	Schema         string `koanf:"schema"`
	MigrateOnStart bool   `koanf:"migrate_on_start"`
	MaxOpenConns   int    `koanf:"max_open_conns"`
	// MaxIdleConns, ConnMaxIdleSeconds and ConnMaxLifetimeSeconds let the
	// pool shrink after a burst, so a process does not sit on connections
	// other clients of the same server need (docs/operations.md#capacity).
	MaxIdleConns           int `koanf:"max_idle_conns"`
	ConnMaxIdleSeconds     int `koanf:"conn_max_idle_seconds"`
	ConnMaxLifetimeSeconds int `koanf:"conn_max_lifetime_seconds"`
}

// Redis configures the Redis used for change notifications, auth-cache
// invalidation, throttling and the asynq queues. URL alone names one
// server. With SentinelMaster (Sentinel) or ClusterAddrs (Redis Cluster)
// the servers come from those keys instead, and URL still supplies the
// data nodes' username, password, database, TLS (rediss://) and timeouts.
type Redis struct {
	URL string `koanf:"url"`
	// SentinelMaster is the name the sentinels monitor the primary under.
	SentinelMaster string `koanf:"sentinel_master"`
	// SentinelAddrs are the sentinels' host:port addresses.
	SentinelAddrs []string `koanf:"sentinel_addrs"`
	// SentinelPassword authenticates to the sentinels (requirepass of
	// the sentinel processes), when they have one.
	SentinelPassword secret.String `koanf:"sentinel_password"`
	// ClusterAddrs are seed nodes of a Redis Cluster (host:port).
	ClusterAddrs []string `koanf:"cluster_addrs"`
}

// Log configures log/slog output. Level is hot-reloadable.
type Log struct {
	Level  string `koanf:"level"`
	Format string `koanf:"format"`
}

// PAK configures the generation of prefixed API keys.
type PAK struct {
	Prefix           string `koanf:"prefix"`
	ShortTokenPrefix string `koanf:"short_token_prefix"`
	ShortTokenLength int    `koanf:"short_token_length"`
	LongTokenLength  int    `koanf:"long_token_length"`
	RNG              string `koanf:"rng"`
	Digest           string `koanf:"digest"`
}

// Broker holds the broker section of the original configuration.
type Broker struct {
	// PakHash pins the admin PAK hash (64 hex characters) at first start.
	PakHash string `koanf:"pak_hash"`
	// AdminPakFile, when set, receives a generated admin PAK (mode 0600).
	AdminPakFile string `koanf:"admin_pak_file"`
	// AdminPakSecret, when set, names the Kubernetes Secret (in
	// AdminPakSecretNamespace, default the pod's) that receives a
	// generated admin PAK instead of stdout.
	AdminPakSecret                   string        `koanf:"admin_pak_secret"`
	AdminPakSecretNamespace          string        `koanf:"admin_pak_secret_namespace"`
	DiagnosticCleanupIntervalSeconds int           `koanf:"diagnostic_cleanup_interval_seconds"`
	DiagnosticMaxAgeHours            int           `koanf:"diagnostic_max_age_hours"`
	WebhookEncryptionKey             secret.String `koanf:"webhook_encryption_key"`
	WebhookDeliveryIntervalSeconds   int           `koanf:"webhook_delivery_interval_seconds"`
	WebhookDeliveryBatchSize         int           `koanf:"webhook_delivery_batch_size"`
	WebhookCleanupRetentionDays      int           `koanf:"webhook_cleanup_retention_days"`
	AuditLogRetentionDays            int           `koanf:"audit_log_retention_days"`
	AuthCacheTTLSeconds              int           `koanf:"auth_cache_ttl_seconds"`
	// IdempotencyKeyTTLHours: how long an Idempotency-Key and its stored
	// response are kept (docs/idempotency.md).
	IdempotencyKeyTTLHours int `koanf:"idempotency_key_ttl_hours"`
	// WebhookAllowPrivate lets broker-mode webhook deliveries (and the test
	// endpoint) reach loopback, link-local and cloud-metadata addresses,
	// which the SSRF guard refuses by default. For local development only.
	WebhookAllowPrivate bool `koanf:"webhook_allow_private"`
	// RequireGeneratorRegistration is the consent boundary
	// (docs/configuration.md): on, a generator's stacks reach only agents
	// registered with it, by target, label or annotation alike, and explicit
	// targets need the registration (0.9.1's behaviour). Off by default: the
	// seed's association rules, unchanged.
	RequireGeneratorRegistration bool `koanf:"require_generator_registration"`
	// TelemetryRetentionSeconds is the stack telemetry window
	// (docs/telemetry.md#retention): at most 21600 (6 h, 0.9.1's ceiling).
	TelemetryRetentionSeconds int `koanf:"telemetry_retention_seconds"`
	// TelemetryMaxRowsPerStack bounds the log rows and the event rows kept
	// per stack; the sweep deletes the oldest beyond it.
	TelemetryMaxRowsPerStack int `koanf:"telemetry_max_rows_per_stack"`
	// TelemetrySweepIntervalSeconds is how often the work-order-scheduler
	// runs the telemetry retention sweep.
	TelemetrySweepIntervalSeconds int `koanf:"telemetry_sweep_interval_seconds"`
}

// CORS configures the /api/v1 CORS layer. AllowedOrigins and MaxAgeSeconds
// are hot-reloadable.
type CORS struct {
	AllowedOrigins []string `koanf:"allowed_origins"`
	AllowedMethods []string `koanf:"allowed_methods"`
	AllowedHeaders []string `koanf:"allowed_headers"`
	MaxAgeSeconds  int      `koanf:"max_age_seconds"`
}

// Telemetry configures OpenTelemetry tracing. Broker and Agent hold the
// original's per-component overrides ([telemetry.broker], [telemetry.agent]);
// use ForBroker / ForAgent to get the resolved values.
type Telemetry struct {
	Enabled      bool    `koanf:"enabled"`
	OTLPEndpoint string  `koanf:"otlp_endpoint"`
	ServiceName  string  `koanf:"service_name"`
	SamplingRate float64 `koanf:"sampling_rate"`

	Broker TelemetryOverride `koanf:"broker"`
	Agent  TelemetryOverride `koanf:"agent"`
}

// TelemetryOverride replaces a base telemetry value for one component. A nil
// field inherits the base value, which is why these are pointers: false and
// 0.0 are meaningful overrides.
type TelemetryOverride struct {
	Enabled      *bool    `koanf:"enabled"`
	OTLPEndpoint *string  `koanf:"otlp_endpoint"`
	ServiceName  *string  `koanf:"service_name"`
	SamplingRate *float64 `koanf:"sampling_rate"`
}

// HTTP configures the listener of a service.
type HTTP struct {
	// Addr is host:port. The api defaults to 0.0.0.0:3000 as the original.
	Addr                   string `koanf:"addr"`
	MaxBodyBytes           int64  `koanf:"max_body_bytes"`
	ShutdownTimeoutSeconds int    `koanf:"shutdown_timeout_seconds"`
	// MaxInFlight bounds the api requests being worked on at once (held
	// long-polls do not count); beyond it a request queues for at most
	// QueueWaitMillis and is then shed with 503 + Retry-After.
	MaxInFlight     int `koanf:"max_in_flight"`
	QueueWaitMillis int `koanf:"queue_wait_millis"`
	// TrustedProxies are the CIDRs or IPs of the proxies (ingress, load
	// balancer) whose X-Forwarded-For / X-Real-IP is believed for the client
	// IP used by auth throttling and the audit log. Empty (the default)
	// trusts no forwarded header: the TCP peer is the client.
	TrustedProxies []string `koanf:"trusted_proxies"`
}

// Auth configures the internal auth service and how api reaches it.
type Auth struct {
	// URL is the base URL of the auth service as seen by api.
	URL string `koanf:"url"`
	// Addr is the listen address of the auth service.
	Addr string `koanf:"addr"`
	// FailureLimit failed verifications per client within
	// FailureWindowSeconds lead to 429 until the window ends.
	FailureLimit         int `koanf:"failure_limit"`
	FailureWindowSeconds int `koanf:"failure_window_seconds"`
}

// Templating configures the templating service and how api reaches it.
type Templating struct {
	// URL is the base URL of the templating service as seen by api.
	URL string `koanf:"url"`
	// Addr is the listen address of the templating service.
	Addr string `koanf:"addr"`
	// RenderTimeoutMillis bounds one render (the hard limit on untrusted
	// templates); api waits a little longer before answering 503.
	RenderTimeoutMillis int `koanf:"render_timeout_millis"`
	// MaxOutputBytes caps a rendered template.
	MaxOutputBytes int `koanf:"max_output_bytes"`
}

// WebhookDispatch configures the webhook-dispatch service (an asynq
// worker fed by the outbox relay).
type WebhookDispatch struct {
	// Addr is the listen address of its /healthz, /readyz and /metrics.
	Addr string `koanf:"addr"`
	// Concurrency is how many deliveries one replica attempts at once.
	Concurrency int `koanf:"concurrency"`
	// PerHostConcurrency bounds concurrent attempts to one receiver host
	// per replica, so one slow endpoint cannot occupy every worker.
	PerHostConcurrency int `koanf:"per_host_concurrency"`
}

// Agent is the agent section of the original configuration. The broker-side
// services ignore it; it lives here so one file and one env namespace serve
// both binaries, as in the original.
type Agent struct {
	BrokerURL   string        `koanf:"broker_url"`
	PAK         secret.String `koanf:"pak"`
	AgentName   string        `koanf:"agent_name"`
	ClusterName string        `koanf:"cluster_name"`
	// PollingInterval is in seconds (heartbeat, target state, work orders).
	PollingInterval int `koanf:"polling_interval"`
	// KubeconfigPath empty means in-cluster configuration.
	KubeconfigPath string `koanf:"kubeconfig_path"`
	// MaxRetries is the number of broker readiness probes at start-up, 1 s apart.
	MaxRetries               int  `koanf:"max_retries"`
	MaxEventMessageRetries   int  `koanf:"max_event_message_retries"`
	EventMessageRetryDelay   int  `koanf:"event_message_retry_delay"`
	HealthPort               int  `koanf:"health_port"`
	DeploymentHealthEnabled  bool `koanf:"deployment_health_enabled"`
	DeploymentHealthInterval int  `koanf:"deployment_health_interval"`

	// Keys the Go agent adds.

	// DriftCheckInterval is in seconds; 0 disables drift checks.
	DriftCheckInterval int `koanf:"drift_check_interval"`
	// DriftMode is "correct" (re-apply drifted objects) or "report".
	DriftMode string `koanf:"drift_mode"`
	// OutboxDir holds the durable outbox (a subfolder per agent id); empty
	// means $TMPDIR/brokkr-agent/outbox, "memory" keeps it in memory only.
	OutboxDir string `koanf:"outbox_dir"`
	// OutboxMaxBytes bounds the outbox; the oldest records go first.
	OutboxMaxBytes int64 `koanf:"outbox_max_bytes"`
	// StackConcurrency bounds how many stacks reconcile at once.
	StackConcurrency int `koanf:"stack_concurrency"`
	// ShutdownGraceSeconds is how long a drain waits for in-flight work.
	ShutdownGraceSeconds int `koanf:"shutdown_grace_seconds"`
	// TargetStateWaitSeconds is the long-poll wait asked of the broker
	// (0 polls every polling_interval; at most 60).
	TargetStateWaitSeconds int `koanf:"target_state_wait_seconds"`
	// DiagnosticsEnabled turns the on-demand diagnostics loop on or off.
	DiagnosticsEnabled bool `koanf:"diagnostics_enabled"`
	// DiagnosticsPollInterval is in seconds (the original's fixed 10).
	DiagnosticsPollInterval int `koanf:"diagnostics_poll_interval"`
	// DiagnosticsLogLines is the log tail collected per container.
	DiagnosticsLogLines int `koanf:"diagnostics_log_lines"`
	// GeneratorIDs are the generators the agent registers itself with at
	// start-up (comma-separated in the environment); malformed entries are
	// skipped with a warning, as in 0.9.1.
	GeneratorIDs []string `koanf:"generator_ids"`
	// KubeQPS and KubeBurst are the client-side rate limit towards the
	// Kubernetes API; KubeQPS ≤ 0 leaves flow control to the apiserver.
	KubeQPS   float64 `koanf:"kube_qps"`
	KubeBurst int     `koanf:"kube_burst"`
	// WorkOrdersEnabled turns work-order execution (polling, claiming,
	// running) on or off.
	WorkOrdersEnabled bool `koanf:"work_orders_enabled"`
	// WorkOrderPollInterval is in seconds between polls for pending work
	// orders (the original polls every polling_interval).
	WorkOrderPollInterval int `koanf:"work_order_poll_interval"`
	// WorkOrderConcurrency bounds how many work orders run at once.
	WorkOrderConcurrency int `koanf:"work_order_concurrency"`
	// WorkOrderTimeoutSeconds bounds one work order: applying it and
	// waiting for its Jobs or its BuildRun (the original's fixed 900).
	WorkOrderTimeoutSeconds int `koanf:"work_order_timeout_seconds"`
	// WebhooksEnabled turns agent-side webhook delivery (claiming and
	// POSTing the deliveries of subscriptions with target_labels) on or off.
	WebhooksEnabled bool `koanf:"webhooks_enabled"`
	// WebhookPollInterval is in seconds between claims of pending webhook
	// deliveries while ACTIVE.
	WebhookPollInterval int `koanf:"webhook_poll_interval"`
	// WebhookConcurrency bounds how many webhook deliveries are in flight
	// at once.
	WebhookConcurrency int `koanf:"webhook_concurrency"`
	// LogStreamingEnabled turns pod-log streaming on or off: tailing the
	// containers of Pods annotated k8s.brokkr.io/stack and
	// brokkr.io/stream-logs: "true" (services/agent/README.md#log-streaming).
	LogStreamingEnabled bool `koanf:"log_streaming_enabled"`
	// KubeEventsEnabled turns forwarding the Kubernetes Events of
	// stack-managed objects on or off.
	KubeEventsEnabled bool `koanf:"kube_events_enabled"`
	// MaxLogTails bounds the containers whose logs are followed at once.
	MaxLogTails int `koanf:"max_log_tails"`
	// WatchNamespace restricts the Pod and Event watches of log streaming
	// to one namespace (an agent with namespace-scoped RBAC); empty
	// watches the whole cluster (the original's key).
	WatchNamespace string `koanf:"watch_namespace"`
	// KubeEventUIDCacheCap bounds the cache of which stack an Event's
	// object belongs to (the original's key).
	KubeEventUIDCacheCap int `koanf:"kube_event_uid_cache_cap"`
}

// TLS lets a service terminate TLS itself. The original's Helm chart writes
// BROKKR__TLS__{ENABLED,CERT_PATH,KEY_PATH} although the original binary has
// no such section; modelling it keeps those deployments starting (unknown
// keys are rejected) and makes the keys do what the chart promises.
type TLS struct {
	Enabled  bool   `koanf:"enabled"`
	CertPath string `koanf:"cert_path"`
	KeyPath  string `koanf:"key_path"`
}
