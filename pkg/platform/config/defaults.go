package config

// Defaults returns the built-in configuration: the original's default.toml
// and code fallbacks, except where the team decided otherwise (noted inline).
func Defaults() Settings {
	return Settings{
		Database: Database{
			// Port 5433 as in the original's default.toml
			// (docs/compatibility.md#config-defaults).
			URL:                    "postgres://brokkr:brokkr@localhost:5433/brokkr",
			MigrateOnStart:         false,
			MaxOpenConns:           20,
			MaxIdleConns:           4,
			ConnMaxIdleSeconds:     60,
			ConnMaxLifetimeSeconds: 1800,
		},
		Redis: Redis{URL: "redis://127.0.0.1:6379/0", SentinelAddrs: []string{}, ClusterAddrs: []string{}},
		Log:   Log{Level: "debug", Format: "text"},
		PAK: PAK{
			Prefix:           "brokkr",
			ShortTokenPrefix: "BR",
			ShortTokenLength: 8,
			LongTokenLength:  24,
			RNG:              "osrng",
			Digest:           "8",
		},
		Broker: Broker{
			// No well-known admin hash (docs/compatibility.md#admin-bootstrap):
			// an empty value makes the
			// first start generate an admin PAK.
			PakHash:                          "",
			DiagnosticCleanupIntervalSeconds: 900,
			DiagnosticMaxAgeHours:            1,
			WebhookDeliveryIntervalSeconds:   5,
			WebhookDeliveryBatchSize:         50,
			WebhookCleanupRetentionDays:      7,
			AuditLogRetentionDays:            90,
			AuthCacheTTLSeconds:              60,
			IdempotencyKeyTTLHours:           24,
			WebhookAllowPrivate:              false,
			TelemetryRetentionSeconds:        21600,
			TelemetryMaxRowsPerStack:         100000,
			TelemetrySweepIntervalSeconds:    60,
		},
		CORS: CORS{
			AllowedOrigins: []string{"http://localhost:3001"},
			AllowedMethods: []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"},
			AllowedHeaders: []string{"Authorization", "Content-Type"},
			MaxAgeSeconds:  3600,
		},
		Telemetry: Telemetry{
			Enabled:      false,
			OTLPEndpoint: "http://localhost:4317",
			ServiceName:  "brokkr",
			SamplingRate: 0.1,
			Broker:       TelemetryOverride{ServiceName: ptr("brokkr-broker")},
			Agent:        TelemetryOverride{ServiceName: ptr("brokkr-agent")},
		},
		HTTP: HTTP{
			Addr:                   "0.0.0.0:3000",
			MaxBodyBytes:           2 << 20,
			ShutdownTimeoutSeconds: 20,
			MaxInFlight:            256,
			QueueWaitMillis:        500,
			TrustedProxies:         []string{},
		},
		Auth: Auth{
			// Not 3001: that is the default CORS origin (a local UI).
			URL:                  "http://127.0.0.1:3100",
			Addr:                 "127.0.0.1:3100",
			FailureLimit:         20,
			FailureWindowSeconds: 60,
		},
		Templating: Templating{
			URL:                 "http://127.0.0.1:3200",
			Addr:                "127.0.0.1:3200",
			RenderTimeoutMillis: 2000,
			MaxOutputBytes:      1 << 20,
		},
		Scheduler: Scheduler{
			Addr:        "127.0.0.1:3300",
			Concurrency: 10,
			// The original's fixed work-order maintenance period.
			MaintenanceIntervalSeconds: 10,
			ScheduleIntervalSeconds:    1,
			// The original's fixed audit cleanup period (daily).
			AuditCleanupIntervalSeconds: 86400,
			RolloutIntervalSeconds:      5,
		},
		WebhookDispatch: WebhookDispatch{
			Addr:               "127.0.0.1:3400",
			Concurrency:        20,
			PerHostConcurrency: 8,
		},
		Agent: Agent{
			BrokerURL:       "http://localhost:3000",
			AgentName:       "DEFAULT",
			ClusterName:     "DEFAULT",
			PollingInterval: 10,
			// Empty means in-cluster, not the original's unexpanded
			// "/home/${USER}/.kube/config" (docs/compatibility.md#config-defaults).
			KubeconfigPath:           "",
			MaxRetries:               60,
			MaxEventMessageRetries:   2,
			EventMessageRetryDelay:   5,
			HealthPort:               8080,
			DeploymentHealthEnabled:  true,
			DeploymentHealthInterval: 60,
			DriftCheckInterval:       300,
			DriftMode:                "correct",
			OutboxDir:                "",
			OutboxMaxBytes:           64 << 20,
			StackConcurrency:         4,
			ShutdownGraceSeconds:     30,
			TargetStateWaitSeconds:   30,
			DiagnosticsEnabled:       true,
			DiagnosticsPollInterval:  10,
			DiagnosticsLogLines:      100,
			GeneratorIDs:             []string{},
			KubeQPS:                  50,
			KubeBurst:                100,
			WorkOrdersEnabled:        true,
			WorkOrderPollInterval:    10,
			WorkOrderConcurrency:     1,
			WorkOrderTimeoutSeconds:  900,
			WebhooksEnabled:          true,
			WebhookPollInterval:      10,
			WebhookConcurrency:       10,
			LogStreamingEnabled:      true,
			KubeEventsEnabled:        true,
			MaxLogTails:              100,
			WatchNamespace:           "",
			KubeEventUIDCacheCap:     10000,
		},
	}
}

func ptr[T any](v T) *T { return &v }

// ForBroker resolves [telemetry.broker] over the base values.
func (t Telemetry) ForBroker() Telemetry { return t.resolve(t.Broker) }

// ForAgent resolves [telemetry.agent] over the base values.
func (t Telemetry) ForAgent() Telemetry { return t.resolve(t.Agent) }

func (t Telemetry) resolve(o TelemetryOverride) Telemetry {
	r := Telemetry{
		Enabled:      t.Enabled,
		OTLPEndpoint: t.OTLPEndpoint,
		ServiceName:  t.ServiceName,
		SamplingRate: t.SamplingRate,
	}
	if o.Enabled != nil {
		r.Enabled = *o.Enabled
	}
	if o.OTLPEndpoint != nil {
		r.OTLPEndpoint = *o.OTLPEndpoint
	}
	if o.ServiceName != nil {
		r.ServiceName = *o.ServiceName
	}
	if o.SamplingRate != nil {
		r.SamplingRate = *o.SamplingRate
	}
	return r
}
