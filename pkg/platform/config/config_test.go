package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

func environ(kv ...string) func() []string {
	return func() []string { return kv }
}

func writeFile(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "brokkr.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsLoadAndValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	got, err := Load(LoadOptions{Environ: environ()})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Defaults()) {
		t.Fatalf("Load with nothing set differs from Defaults:\n got %+v\nwant %+v", got, Defaults())
	}
	d := Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"database.url", d.Database.URL, "postgres://brokkr:brokkr@localhost:5433/brokkr"},
		{"log.level", d.Log.Level, "debug"},
		{"broker.pak_hash", d.Broker.PakHash, ""},
		{"http.max_body_bytes", d.HTTP.MaxBodyBytes, int64(2097152)},
		{"auth.url", d.Auth.URL, "http://127.0.0.1:3100"},
		{"cors.allowed_origins", d.CORS.AllowedOrigins, []string{"http://localhost:3001"}},
		{"telemetry.broker.service_name", d.Telemetry.ForBroker().ServiceName, "brokkr-broker"},
		{"telemetry.agent.service_name", d.Telemetry.ForAgent().ServiceName, "brokkr-agent"},
		{"agent.health_port", d.Agent.HealthPort, 8080},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, `
[log]
level = "info"
format = "json"

[broker]
webhook_delivery_batch_size = 10
webhook_delivery_interval_seconds = 7

[cors]
allowed_origins = ["https://file.example"]

[telemetry.broker]
sampling_rate = 0.5
`)
	tests := []struct {
		name  string
		env   []string
		check func(t *testing.T, s Settings)
	}{
		{
			name: "file beats defaults",
			env:  []string{EnvConfigFile + "=" + file},
			check: func(t *testing.T, s Settings) {
				eq(t, "log.level", s.Log.Level, "info")
				eq(t, "log.format", s.Log.Format, "json")
				eq(t, "batch", s.Broker.WebhookDeliveryBatchSize, 10)
				eq(t, "origins", s.CORS.AllowedOrigins, []string{"https://file.example"})
				eq(t, "untouched default", s.Broker.DiagnosticCleanupIntervalSeconds, 900)
				eq(t, "broker sampling", s.Telemetry.ForBroker().SamplingRate, 0.5)
				eq(t, "agent sampling inherits", s.Telemetry.ForAgent().SamplingRate, 0.1)
			},
		},
		{
			name: "env beats file",
			env: []string{
				EnvConfigFile + "=" + file,
				"BROKKR__LOG__LEVEL=warn",
				"BROKKR__BROKER__WEBHOOK_DELIVERY_BATCH_SIZE=99",
				"BROKKR__TELEMETRY__BROKER__SERVICE_NAME=my-broker",
				"BROKKR__TELEMETRY__AGENT__ENABLED=true",
				"BROKKR__DATABASE__MIGRATE_ON_START=1",
				"BROKKR__HTTP__MAX_BODY_BYTES=1048576",
				"BROKKR__TELEMETRY__SAMPLING_RATE=1",
				"BROKKR__AGENT__PAK=brokkr_BRabcdef_secretsecret",
			},
			check: func(t *testing.T, s Settings) {
				eq(t, "log.level", s.Log.Level, "warn")
				eq(t, "log.format (file)", s.Log.Format, "json")
				eq(t, "batch", s.Broker.WebhookDeliveryBatchSize, 99)
				eq(t, "interval (file)", s.Broker.WebhookDeliveryIntervalSeconds, 7)
				eq(t, "broker service", s.Telemetry.ForBroker().ServiceName, "my-broker")
				eq(t, "agent enabled", s.Telemetry.ForAgent().Enabled, true)
				eq(t, "base enabled", s.Telemetry.Enabled, false)
				eq(t, "migrate", s.Database.MigrateOnStart, true)
				eq(t, "max body", s.HTTP.MaxBodyBytes, int64(1<<20))
				eq(t, "sampling", s.Telemetry.SamplingRate, 1.0)
				eq(t, "agent pak", s.Agent.PAK, secret.String("brokkr_BRabcdef_secretsecret"))
			},
		},
		{
			name: "opts.File beats BROKKR_CONFIG_FILE",
			env:  []string{EnvConfigFile + "=/does/not/exist.toml"},
			check: func(t *testing.T, s Settings) {
				eq(t, "log.level", s.Log.Level, "info")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Environ: environ(tt.env...)}
			if strings.HasPrefix(tt.name, "opts.File") {
				opts.File = file
			}
			s, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func TestLoadCORSLists(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		file string
		want CORS
	}{
		{
			name: "comma-separated env, trimmed",
			env: []string{
				"BROKKR__CORS__ALLOWED_ORIGINS= http://a.example , http://b.example,",
				"BROKKR__CORS__ALLOWED_METHODS=GET,POST",
				"BROKKR__CORS__ALLOWED_HEADERS=Authorization, X-Request-Id",
				"BROKKR__CORS__MAX_AGE_SECONDS=60",
			},
			want: CORS{
				AllowedOrigins: []string{"http://a.example", "http://b.example"},
				AllowedMethods: []string{"GET", "POST"},
				AllowedHeaders: []string{"Authorization", "X-Request-Id"},
				MaxAgeSeconds:  60,
			},
		},
		{
			name: "single origin env",
			env:  []string{"BROKKR__CORS__ALLOWED_ORIGINS=*"},
			want: CORS{
				AllowedOrigins: []string{"*"},
				AllowedMethods: Defaults().CORS.AllowedMethods,
				AllowedHeaders: Defaults().CORS.AllowedHeaders,
				MaxAgeSeconds:  3600,
			},
		},
		{
			name: "TOML array",
			file: "[cors]\nallowed_origins = [\"http://x\", \"http://y\"]\n",
			want: CORS{
				AllowedOrigins: []string{"http://x", "http://y"},
				AllowedMethods: Defaults().CORS.AllowedMethods,
				AllowedHeaders: Defaults().CORS.AllowedHeaders,
				MaxAgeSeconds:  3600,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Environ: environ(tt.env...)}
			if tt.file != "" {
				opts.File = writeFile(t, t.TempDir(), tt.file)
			}
			s, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "cors", s.CORS, tt.want)
		})
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		file string
		want []string
	}{
		{
			name: "unknown env key",
			env:  []string{"BROKKR__BROKER__PAK_HASHH=x"},
			want: []string{"broker.pak_hashh (BROKKR__BROKER__PAK_HASHH): unknown key"},
		},
		{
			name: "unknown env section",
			env:  []string{"BROKKR__WEBHOOKS__ENCRYPTION_KEY=x"},
			want: []string{"webhooks.encryption_key (BROKKR__WEBHOOKS__ENCRYPTION_KEY): unknown key; did you mean broker.webhook_encryption_key (BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY)?"},
		},
		{
			name: "unknown file key",
			file: "[database]\nurll = \"postgres://x/y\"\n",
			want: []string{"database.urll (BROKKR__DATABASE__URLL): unknown key"},
		},
		{
			name: "unknown nested telemetry key",
			env:  []string{"BROKKR__TELEMETRY__BROKER__COLOUR=red"},
			want: []string{"telemetry.broker.colour (BROKKR__TELEMETRY__BROKER__COLOUR): unknown key"},
		},
		{
			name: "section given a value",
			env:  []string{"BROKKR__CORS=x"},
			want: []string{"cors (BROKKR__CORS): unknown key"},
		},
		{
			name: "not an integer",
			env:  []string{"BROKKR__BROKER__WEBHOOK_DELIVERY_BATCH_SIZE=fifty"},
			want: []string{`broker.webhook_delivery_batch_size (BROKKR__BROKER__WEBHOOK_DELIVERY_BATCH_SIZE): must be an integer, got "fifty"`},
		},
		{
			name: "not a bool",
			env:  []string{"BROKKR__TELEMETRY__ENABLED=yes"},
			want: []string{`telemetry.enabled (BROKKR__TELEMETRY__ENABLED): must be true or false, got "yes"`},
		},
		{
			name: "wrong TOML type",
			file: "[cors]\nmax_age_seconds = \"soon\"\n",
			want: []string{`cors.max_age_seconds (BROKKR__CORS__MAX_AGE_SECONDS): must be an integer, got "soon"`},
		},
		{
			name: "all problems at once",
			env:  []string{"BROKKR__LOG__LEVEL=loud", "BROKKR__HTTP__ADDR=3000"},
			want: []string{
				`log.level (BROKKR__LOG__LEVEL): must be one of trace, debug, info, warn, error, got "loud"`,
				`http.addr (BROKKR__HTTP__ADDR): must be host:port, got "3000"`,
			},
		},
		{
			name: "bad TOML names the file and line",
			file: "[log]\nlevel = \n",
			want: []string{"invalid config: ", "brokkr.toml (BROKKR_CONFIG_FILE): line 2"},
		},
		{
			name: "missing file",
			env:  []string{EnvConfigFile + "=/nonexistent/brokkr.toml"},
			want: []string{"/nonexistent/brokkr.toml (BROKKR_CONFIG_FILE)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := LoadOptions{Environ: environ(tt.env...)}
			if tt.file != "" {
				opts.File = writeFile(t, t.TempDir(), tt.file)
			}
			_, err := Load(opts)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not match ErrInvalid: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Settings)
		want   string // "" means valid
	}{
		{"defaults", func(*Settings) {}, ""},
		{"trace accepted", func(s *Settings) { s.Log.Level = "TRACE" }, ""},
		{"EnvFilter directive list", func(s *Settings) { s.Log.Level = "info,hyper=warn" }, ""},
		{"bad level", func(s *Settings) { s.Log.Level = "verbose" }, "log.level (BROKKR__LOG__LEVEL): must be one of"},
		{"JSON format any case", func(s *Settings) { s.Log.Format = "JSON" }, ""},
		{"bad format", func(s *Settings) { s.Log.Format = "xml" }, `log.format (BROKKR__LOG__FORMAT): must be text or json, got "xml"`},
		{"pak_hash short", func(s *Settings) { s.Broker.PakHash = "abc" }, "invalid config: broker.pak_hash (BROKKR__BROKER__PAK_HASH): must be 64 hex characters"},
		{"pak_hash not hex", func(s *Settings) { s.Broker.PakHash = strings.Repeat("g", 64) }, "broker.pak_hash (BROKKR__BROKER__PAK_HASH): must be 64 hex characters"},
		{"pak_hash ok", func(s *Settings) {
			s.Broker.PakHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"
		}, ""},
		{"encryption key short", func(s *Settings) { s.Broker.WebhookEncryptionKey = "deadbeef" }, "broker.webhook_encryption_key (BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY): must be 64 hex characters"},
		{"database url scheme", func(s *Settings) { s.Database.URL = "mysql://u:hunter2@h/db" }, "database.url (BROKKR__DATABASE__URL): must be a postgres:// or postgresql:// URL"},
		{"database url socket", func(s *Settings) { s.Database.URL = "postgres:///brokkr?host=/var/run/postgresql" }, ""},
		{"schema starts with digit", func(s *Settings) { s.Database.Schema = "1tenant" }, "database.schema (BROKKR__DATABASE__SCHEMA): must start with an ASCII letter"},
		{"schema bad char", func(s *Settings) { s.Database.Schema = "ten-ant" }, "database.schema (BROKKR__DATABASE__SCHEMA): may contain only"},
		{"schema too long", func(s *Settings) { s.Database.Schema = "t" + strings.Repeat("x", 63) }, "database.schema (BROKKR__DATABASE__SCHEMA): must be at most 63 characters"},
		{"schema ok", func(s *Settings) { s.Database.Schema = "tenant_acme2" }, ""},
		{"zero interval", func(s *Settings) { s.Broker.WebhookDeliveryIntervalSeconds = 0 }, "broker.webhook_delivery_interval_seconds (BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS): must be greater than 0"},
		{"auth cache ttl 0 disables", func(s *Settings) { s.Broker.AuthCacheTTLSeconds = 0 }, ""},
		{"sampling > 1", func(s *Settings) { s.Telemetry.SamplingRate = 1.5 }, "telemetry.sampling_rate (BROKKR__TELEMETRY__SAMPLING_RATE): must be between 0 and 1"},
		{"override sampling < 0", func(s *Settings) { s.Telemetry.Agent.SamplingRate = ptr(-0.1) }, "telemetry.agent.sampling_rate (BROKKR__TELEMETRY__AGENT__SAMPLING_RATE): must be between 0 and 1"},
		{"http addr", func(s *Settings) { s.HTTP.Addr = "localhost" }, "http.addr (BROKKR__HTTP__ADDR): must be host:port"},
		{"http addr port range", func(s *Settings) { s.HTTP.Addr = ":70000" }, "http.addr (BROKKR__HTTP__ADDR): must have a port between 0 and 65535"},
		{"pak prefix underscore", func(s *Settings) { s.PAK.Prefix = "brk_x" }, "pak.prefix (BROKKR__PAK__PREFIX)"},
		{"pak short length", func(s *Settings) { s.PAK.ShortTokenLength = 2 }, "pak.short_token_length (BROKKR__PAK__SHORT_TOKEN_LENGTH)"},
		{"pak long length", func(s *Settings) { s.PAK.LongTokenLength = 4 }, "pak.long_token_length (BROKKR__PAK__LONG_TOKEN_LENGTH)"},
		{"redis url", func(s *Settings) { s.Redis.URL = "http://x" }, "redis.url (BROKKR__REDIS__URL)"},
		{"redis sentinel ok", func(s *Settings) {
			s.Redis.SentinelMaster, s.Redis.SentinelAddrs, s.Redis.SentinelPassword = "mymaster", []string{"s1:26379", "s2:26379"}, "pw"
		}, ""},
		{"redis sentinel without addrs", func(s *Settings) { s.Redis.SentinelMaster = "mymaster" }, "redis.sentinel_addrs (BROKKR__REDIS__SENTINEL_ADDRS): must name at least one sentinel"},
		{"redis sentinel addrs without master", func(s *Settings) { s.Redis.SentinelAddrs = []string{"s1:26379"} }, "redis.sentinel_master (BROKKR__REDIS__SENTINEL_MASTER): must be set"},
		{"redis sentinel bad addr", func(s *Settings) {
			s.Redis.SentinelMaster, s.Redis.SentinelAddrs = "m", []string{"s1"}
		}, `redis.sentinel_addrs (BROKKR__REDIS__SENTINEL_ADDRS): must be host:port, got "s1"`},
		{"redis sentinel password alone", func(s *Settings) { s.Redis.SentinelPassword = "pw" }, "redis.sentinel_password (BROKKR__REDIS__SENTINEL_PASSWORD): only applies"},
		{"redis sentinel and cluster", func(s *Settings) {
			s.Redis.SentinelMaster, s.Redis.SentinelAddrs, s.Redis.ClusterAddrs = "m", []string{"s:1"}, []string{"n:1"}
		}, "redis.cluster_addrs (BROKKR__REDIS__CLUSTER_ADDRS): must be empty when redis.sentinel_master is set"},
		{"redis cluster ok", func(s *Settings) {
			s.Redis.URL = "redis://:pw@x:6379"
			s.Redis.ClusterAddrs = []string{"n1:6379", "n2:6379"}
		}, ""},
		{"redis cluster database", func(s *Settings) { s.Redis.ClusterAddrs = []string{"n1:6379"}; s.Redis.URL = "redis://x:6379/2" }, "redis.url (BROKKR__REDIS__URL): must name database 0"},
		{"tls needs cert", func(s *Settings) { s.TLS.Enabled = true; s.TLS.KeyPath = "/k" }, "tls.cert_path (BROKKR__TLS__CERT_PATH): must be set"},
		{"agent health port", func(s *Settings) { s.Agent.HealthPort = 0 }, "agent.health_port (BROKKR__AGENT__HEALTH_PORT)"},
		{"agent drift mode", func(s *Settings) { s.Agent.DriftMode = "never" }, `agent.drift_mode (BROKKR__AGENT__DRIFT_MODE): must be correct or report, got "never"`},
		{"agent drift mode any case", func(s *Settings) { s.Agent.DriftMode = "Report" }, ""},
		{"agent drift disabled", func(s *Settings) { s.Agent.DriftCheckInterval = 0 }, ""},
		{"agent stack concurrency", func(s *Settings) { s.Agent.StackConcurrency = 0 }, "agent.stack_concurrency (BROKKR__AGENT__STACK_CONCURRENCY): must be between 1 and 64, got 0"},
		{"agent long-poll wait", func(s *Settings) { s.Agent.TargetStateWaitSeconds = 61 }, "agent.target_state_wait_seconds (BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS): must be between 0 and 60"},
		{"telemetry window over the 6 h ceiling", func(s *Settings) { s.Broker.TelemetryRetentionSeconds = 21601 }, "broker.telemetry_retention_seconds (BROKKR__BROKER__TELEMETRY_RETENTION_SECONDS): must be between 1 and 21600, got 21601"},
		{"telemetry row cap", func(s *Settings) { s.Broker.TelemetryMaxRowsPerStack = 0 }, "broker.telemetry_max_rows_per_stack (BROKKR__BROKER__TELEMETRY_MAX_ROWS_PER_STACK): must be"},
		{"agent outbox bound", func(s *Settings) { s.Agent.OutboxMaxBytes = 100 }, "agent.outbox_max_bytes (BROKKR__AGENT__OUTBOX_MAX_BYTES): must be at least 4096"},
		{"agent log lines", func(s *Settings) { s.Agent.DiagnosticsLogLines = 0 }, "agent.diagnostics_log_lines (BROKKR__AGENT__DIAGNOSTICS_LOG_LINES)"},
		{"agent diagnostics poll", func(s *Settings) { s.Agent.DiagnosticsPollInterval = 0 }, "agent.diagnostics_poll_interval (BROKKR__AGENT__DIAGNOSTICS_POLL_INTERVAL)"},
		{"agent unthrottled", func(s *Settings) { s.Agent.KubeQPS = -1 }, ""},
		{"agent burst", func(s *Settings) { s.Agent.KubeBurst = 0 }, "agent.kube_burst (BROKKR__AGENT__KUBE_BURST): must be between 1 and 100000, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Defaults()
			tt.mutate(&s)
			err := s.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got nil", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q\n does not contain %q", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.ExitCode() != 64 {
				t.Fatalf("want *Error with exit code 64, got %T", err)
			}
		})
	}
}

func TestValidateNeverEchoesSecrets(t *testing.T) {
	s := Defaults()
	s.Database.URL = "mysql://user:hunter2@db/brokkr"
	s.Broker.WebhookEncryptionKey = "supersecretkeyvalue"
	s.Broker.PakHash = "zz-not-a-hash-but-private"
	err := s.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, leak := range []string{"hunter2", "supersecretkeyvalue", "zz-not-a-hash"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error leaks %q: %v", leak, err)
		}
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"debug", "DEBUG", false},
		{"trace", "DEBUG", false},
		{"Info", "INFO", false},
		{"warn", "WARN", false},
		{"warning", "WARN", false},
		{"error", "ERROR", false},
		{"info,brokkr=debug", "INFO", false},
		{"brokkr=debug", "", true},
		{"info,debug", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		lv, err := ParseLevel(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseLevel(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && lv.String() != tt.want {
			t.Errorf("ParseLevel(%q) = %s, want %s", tt.in, lv, tt.want)
		}
	}
}

func TestWatcherConfig(t *testing.T) {
	file := writeFile(t, t.TempDir(), "")
	tests := []struct {
		name string
		env  []string
		want WatcherConfig
	}{
		{"no file", nil, WatcherConfig{Debounce: 5 * time.Second}},
		{"missing file", []string{EnvConfigFile + "=/nope.toml"}, WatcherConfig{File: "/nope.toml", Debounce: 5 * time.Second}},
		{"enabled", []string{EnvConfigFile + "=" + file}, WatcherConfig{Enabled: true, File: file, Debounce: 5 * time.Second}},
		{"disabled false", []string{EnvConfigFile + "=" + file, EnvWatcherEnabled + "=FALSE"}, WatcherConfig{File: file, Debounce: 5 * time.Second}},
		{"disabled 0", []string{EnvConfigFile + "=" + file, EnvWatcherEnabled + "=0"}, WatcherConfig{File: file, Debounce: 5 * time.Second}},
		{"debounce", []string{EnvConfigFile + "=" + file, EnvWatcherDebounce + "=2"}, WatcherConfig{Enabled: true, File: file, Debounce: 2 * time.Second}},
		{"bad debounce ignored", []string{EnvConfigFile + "=" + file, EnvWatcherDebounce + "=x"}, WatcherConfig{Enabled: true, File: file, Debounce: 5 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eq(t, "watcher", LoadOptions{Environ: environ(tt.env...)}.Watcher(), tt.want)
		})
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"broker.pak_hash":               "BROKKR__BROKER__PAK_HASH",
		"telemetry.broker.service_name": "BROKKR__TELEMETRY__BROKER__SERVICE_NAME",
	} {
		if got := EnvName(key); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, got, want)
		}
		if back := envKey(want); back != key {
			t.Errorf("envKey(%q) = %q, want %q", want, back, key)
		}
	}
	_, byKey := leaves()
	for _, k := range HotKeys() {
		if _, ok := byKey[k]; !ok {
			t.Errorf("hot key %q is not a config key", k)
		}
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// The Sentinel and Cluster keys come from the environment the Helm chart
// sets: comma-separated address lists and a secret sentinel password.
func TestLoadRedisTopology(t *testing.T) {
	s, err := Load(LoadOptions{Environ: environ(
		"BROKKR__REDIS__URL=redis://:pw@unused:6379/1",
		"BROKKR__REDIS__SENTINEL_MASTER=mymaster",
		"BROKKR__REDIS__SENTINEL_ADDRS=s1:26379, s2:26379",
		"BROKKR__REDIS__SENTINEL_PASSWORD=sentinel-secret",
	)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "addrs", s.Redis.SentinelAddrs, []string{"s1:26379", "s2:26379"})
	eq(t, "master", s.Redis.SentinelMaster, "mymaster")
	if s.Redis.SentinelPassword.Reveal() != "sentinel-secret" || strings.Contains(fmt.Sprint(s.Redis), "sentinel-secret") {
		t.Errorf("sentinel password not loaded or printed: %v", s.Redis)
	}
	s, err = Load(LoadOptions{Environ: environ("BROKKR__REDIS__CLUSTER_ADDRS=n1:6379,n2:6379,n3:6379")})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "cluster", s.Redis.ClusterAddrs, []string{"n1:6379", "n2:6379", "n3:6379"})
}
