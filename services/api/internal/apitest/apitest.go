// Package apitest starts the api's HTTP surface in-process against a fresh
// PostgreSQL database and the real Redis, for integration tests that speak
// HTTP to it like any client.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/api/internal/console"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

// Env is a running api.
type Env struct {
	T        testing.TB
	URL      string
	AdminPAK string
	Store    *postgres.Store
	Changes  *redisadapter.Changes
	// Index is the api's in-memory target-state index.
	Index  *targetstate.Index
	Server *httptest.Server
	// Queue is the asynq queue this api arms work-order retry timers on.
	Queue string
	// WebhookCipher seals this api's webhook secrets (webhooks.go).
	WebhookCipher *aesgcm.Cipher
	// Hub feeds the console's live streams (console on /ui).
	Hub *console.Hub
	// Tenant names this api's Redis channels; a replica (WithReplicaOf)
	// shares its original's.
	Tenant string
	// Telemetry is the stack telemetry use case, TelemetryLive its live
	// tail and TelemetryFeed the Redis feed between replicas.
	Telemetry     *telemetry.Service
	TelemetryLive *telemetry.Hub
	TelemetryFeed *redisadapter.TelemetryFeed
}

// RedisURL is the Redis the tests use (BROKKR_TEST_REDIS_URL overrides).
func RedisURL() string {
	if u := os.Getenv("BROKKR_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// localInvalidator drops hashes from this process's cache and ends the
// console sessions of those PAKs, as the api's invalidator does; the
// cross-replica path through Redis is tested with the redis adapter.
type localInvalidator struct {
	cache   *authn.Cache
	revoker console.Revoker
}

func (l localInvalidator) Invalidate(_ context.Context, hashes ...string) error {
	l.cache.Invalidate(hashes...)
	l.revoker.Invalidate(hashes...)
	return nil
}

func (l localInvalidator) InvalidateAll(context.Context) error {
	l.cache.InvalidateAll()
	l.revoker.InvalidateAll()
	return nil
}

type staticReloader struct{}

func (staticReloader) Reload() ([]config.Change, error) { return nil, nil }

// Option changes how New builds the api.
type Option func(*options)

type options struct {
	renderer   templates.Renderer
	retryTimer workorders.RetryTimer
	clock      workorders.Clock
	webhooks   webhookOptions
	// webhookCipher is set by webhookService.
	webhookCipher *aesgcm.Cipher
	// logs receives the engine's logs (access log, panics); nil discards.
	logs io.Writer
	// boundary is broker.require_generator_registration.
	boundary registrations.Boundary
	// replicaOf is the api whose database, admin PAK and Redis tenant
	// this one shares.
	replicaOf *Env
	// telemetry tunes the telemetry use case.
	telemetry telemetry.Options
}

// WithReplicaOf makes the new api a second replica of e: same database,
// admin PAK and Redis channels, its own in-memory state.
func WithReplicaOf(e *Env) Option { return func(o *options) { o.replicaOf = e } }

// WithTelemetryOptions tunes the telemetry use case (retention, ingest
// concurrency, clock).
func WithTelemetryOptions(t telemetry.Options) Option { return func(o *options) { o.telemetry = t } }

// WithRegistrationBoundary switches the consent boundary
// (broker.require_generator_registration) on.
func WithRegistrationBoundary() Option {
	return func(o *options) { o.boundary = registrations.Boundary{Required: true} }
}

func (o *options) logger() *slog.Logger {
	w := o.logs
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// WithLogs sends the engine's logs (access log, recovered panics) to w, for
// tests that check what reaches the log pipeline.
func WithLogs(w io.Writer) Option { return func(o *options) { o.logs = w } }

// WithRenderer replaces the in-process templating use case (e.g. with the
// HTTP client of a real templating process).
func WithRenderer(r templates.Renderer) Option { return func(o *options) { o.renderer = r } }

// New starts an api on a fresh database and returns it with an admin PAK.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.renderer == nil {
		o.renderer = rendering.NewService(gonja.New(template.DefaultLimits()), jsonschema.New())
	}
	gin.SetMode(gin.ReleaseMode)
	tenant := "test_" + uuid.NewString()
	var store *postgres.Store
	if o.replicaOf != nil {
		store = postgres.NewStore(o.replicaOf.Store.DB())
		tenant = o.replicaOf.Tenant
	} else {
		store = postgres.NewStore(pgtest.New(t))
	}
	store.SetRegistrationBoundary(o.boundary)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	opt, err := goredis.ParseURL(RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// A tenant name per test keeps parallel tests' notifications apart.
	index := targetstate.NewIndex(postgres.NewTargetStates(store), targetstate.IndexOptions{MaxLoads: 4, Logger: log})
	changes := redisadapter.NewChanges(rdb, tenant, index, log)
	go changes.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for !changes.Subscribed() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	cfg := config.Defaults().PAK
	plain, err := pak.NewIssuer(pak.Config{Prefix: cfg.Prefix, ShortTokenPrefix: cfg.ShortTokenPrefix,
		ShortTokenLength: cfg.ShortTokenLength, LongTokenLength: cfg.LongTokenLength})
	if err != nil {
		t.Fatal(err)
	}
	// As the auth service does: record each PAK's public part.
	pakRepo := postgres.NewPAKs(store)
	issuer := paks.NewRecordingIssuer(plain, pakRepo)
	var adminPAK string
	if o.replicaOf != nil {
		adminPAK = o.replicaOf.AdminPAK
	} else {
		issued, adminHash, err := issuer.Issue(ctx) // recorded, as the auth service's bootstrap does
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pakRepo.SetAdminHash(ctx, adminHash); err != nil {
			t.Fatal(err)
		}
		adminPAK = issued.Reveal()
	}
	verifier := paks.NewVerifier(pakRepo, store, nil, paks.ThrottleConfig{}, log)
	cache := authn.NewCache(verifier, time.Minute, 10000)
	// The console's sessions in Redis under this test's tenant, live
	// streams fed by the change hub.
	watch, _ := changes.Watch()
	hub := console.NewHub(ctx, watch)
	sessions := console.NewRedisSessions(rdb, "test_"+uuid.NewString(), time.Hour, 12*time.Hour)
	inval := localInvalidator{cache: cache, revoker: console.Revoker{Sessions: sessions, Hub: hub, Log: log}}

	stackSvc := stacks.NewService(postgres.StackRepos(store), changes)
	agentSvc := agents.NewService(agents.Repos{Tx: store, Journal: store, Agents: postgres.NewAgents(store),
		Targets: postgres.NewAgents(store), Events: postgres.NewAgentEvents(store), Objects: postgres.NewDeploymentObjects(store),
		Dependencies: postgres.NewDependencies(store), Registrations: postgres.NewRegistrations(store),
		Generators: postgres.NewGenerators(store)},
		issuer, inval, changes)
	orders, schedules, queue := workOrderServices(t, store, o, log)
	whs := webhookService(store, changes, &o)
	// The production engine (recovery, URL checks, body limit, JSON 404/405,
	// metrics), so tests see what clients see.
	r := httpserver.New(httpserver.Options{Service: "brokkr-api-test", Logger: o.logger(), Registry: httpserver.NewRegistry()})
	fleetSvc := fleet.NewService(postgres.NewFleet(store), redisadapter.NewPresence(rdb, "test_"+uuid.NewString(), index.Holding, log))
	fleetLive := fleet.NewLive(fleetSvc, 200*time.Millisecond, log)
	fleetNotes, stopNotes := changes.Watch()
	t.Cleanup(stopNotes)
	go fleetLive.Run(ctx, fleetNotes)
	telemetrySvc, telemetryHub, feed := telemetryServices(ctx, t, store, stackSvc, rdb, tenant, o.telemetry, log)
	services := httpapi.Services{
		Telemetry:     telemetrySvc,
		TelemetryLive: telemetryHub,
		Auth:          cache,
		Agents:        agentSvc,
		AgentLabels:   agents.NewLabels(agentSvc, store, store, postgres.NewAgentLabels(store)),
		StackLabels:   stacks.NewLabels(stackSvc, store, store, postgres.NewStackLabels(store)),
		TargetState:   targetstate.NewService(index),
		PAKs:          paks.NewTenants(pakRepo),
		Generators: generators.NewService(generators.Repos{Tx: store, Journal: store,
			Generators: postgres.NewGenerators(store), Stacks: postgres.NewStacks(store)}, issuer, inval, changes),
		Stacks:   stackSvc,
		Rollouts: rollouts.NewService(postgres.RolloutRepos(store), stackSvc, changes),
		Registrations: registrations.NewService(registrations.Repos{Tx: store, Journal: store,
			Registrations: postgres.NewRegistrations(store), Generators: postgres.NewGenerators(store),
			Agents: postgres.NewAgents(store)}, changes),
		Templates:          templates.NewService(postgres.TemplateRepos(store), o.renderer, stackSvc),
		Health:             deploymenthealth.NewService(healthRepos(store), changes),
		Diagnostics:        diagnostics.NewService(diagnosticsRepos(store), changes),
		AuditLog:           auditlog.NewService(postgres.NewAuditLog(store)),
		ConfigReload:       configreload.NewService(staticReloader{}, inval, store),
		WorkOrders:         orders,
		WorkOrderSchedules: schedules,
		Webhooks:           whs,
		Idempotency:        idempotency.NewService(store, postgres.NewIdempotencyKeys(store), o.webhookCipher),
		// Connected agents: this replica's long-polls plus what other
		// replicas published under the test's tenant.
		Fleet: fleetSvc,
		// The live push as in the api binary, with a short sweep.
		FleetLive: fleetLive,
	}
	httpapi.Register(r, services)
	// The console on the same router, as in the api binary.
	ui, err := console.New(console.Deps{Auth: cache, Sessions: sessions,
		Live: hub, Agents: services.Agents, AgentLabels: services.AgentLabels, Overview: overview.NewService(postgres.NewOverview(store), stackSvc),
		Stacks: stackSvc, StackLabels: services.StackLabels,
		Templates: services.Templates, WorkOrders: orders, Webhooks: services.Webhooks, AuditLog: services.AuditLog,
		Diagnostics: services.Diagnostics, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ui.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &Env{T: t, URL: srv.URL, AdminPAK: adminPAK, Store: store, Changes: changes, Index: index, Server: srv, Queue: queue,
		WebhookCipher: o.webhookCipher, Hub: hub, Tenant: tenant,
		Telemetry: telemetrySvc, TelemetryLive: telemetryHub, TelemetryFeed: feed}
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test on error.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes a JSON object body.
func (r Response) Map(t testing.TB) map[string]any {
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request with the given PAK ("" for none). body may be nil, a
// string (sent verbatim) or any value (marshalled to JSON).
func (e *Env) Do(method, path, pakValue string, body any, headers ...string) Response {
	e.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.T.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		e.T.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if pakValue != "" {
		req.Header.Set("Authorization", "Bearer "+pakValue)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// Must sends a request and fails the test unless the status is want.
func (e *Env) Must(want int, method, path, pakValue string, body any) Response {
	e.T.Helper()
	r := e.Do(method, path, pakValue, body)
	if r.Status != want {
		e.T.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// Agent is a registered agent and its PAK.
type Agent struct {
	ID  string
	PAK string
}

// CreateAgent registers an agent as admin.
func (e *Env) CreateAgent(name, cluster string) Agent {
	e.T.Helper()
	var out struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	e.Must(201, "POST", "/api/v1/agents", e.AdminPAK, map[string]string{"name": name, "cluster_name": cluster}).JSON(e.T, &out)
	return Agent{ID: out.Agent.ID, PAK: out.InitialPAK}
}

// Generator is a generator and its PAK.
type Generator struct {
	ID  string
	PAK string
}

// CreateGenerator creates a generator as admin.
func (e *Env) CreateGenerator(name string) Generator {
	e.T.Helper()
	var out struct {
		Generator struct {
			ID string `json:"id"`
		} `json:"generator"`
		PAK string `json:"pak"`
	}
	e.Must(201, "POST", "/api/v1/generators", e.AdminPAK, map[string]string{"name": name}).JSON(e.T, &out)
	return Generator{ID: out.Generator.ID, PAK: out.PAK}
}

// CreateStack creates a stack with the given PAK and returns its id.
func (e *Env) CreateStack(pakValue, name string) string {
	e.T.Helper()
	var out struct {
		ID string `json:"id"`
	}
	e.Must(201, "POST", "/api/v1/stacks", pakValue, map[string]any{"name": name}).JSON(e.T, &out)
	return out.ID
}

// Deploy posts YAML to a stack and returns the object's id and sequence id.
func (e *Env) Deploy(pakValue, stackID, yaml string) (string, int64) {
	e.T.Helper()
	var out struct {
		ID         string `json:"id"`
		SequenceID int64  `json:"sequence_id"`
	}
	e.Must(201, "POST", "/api/v1/stacks/"+stackID+"/deployment-objects", pakValue, map[string]any{"yaml_content": yaml}).JSON(e.T, &out)
	return out.ID, out.SequenceID
}
