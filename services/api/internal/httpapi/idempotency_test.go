package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/services/api/internal/apidocs"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

func count(t *testing.T, e *apitest.Env, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.Store.DB().GetContext(context.Background(), &n, query, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func withKey(e *apitest.Env, method, path, pak string, body any, key string) apitest.Response {
	e.T.Helper()
	return e.Do(method, path, pak, body, "Idempotency-Key", key)
}

// TestIdempotencyReplay: a retry with the same key gets the identical
// response, marked as replayed, and creates nothing: no second row, outbox
// event or audit entry.
func TestIdempotencyReplay(t *testing.T) {
	e := apitest.New(t)
	stackID := e.CreateStack(e.AdminPAK, "idem-stack")
	path := "/api/v1/stacks/" + stackID + "/deployment-objects"
	body := map[string]any{"yaml_content": cmYAML("idem")}

	first := withKey(e, "POST", path, e.AdminPAK, body, "deploy-1")
	if first.Status != 201 || first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first: %d %v %s", first.Status, first.Header, first.Body)
	}
	for i := 0; i < 3; i++ {
		again := withKey(e, "POST", path, e.AdminPAK, body, "deploy-1")
		if again.Status != first.Status || !bytes.Equal(again.Body, first.Body) {
			t.Fatalf("replay %d: %d %s, want %d %s", i, again.Status, again.Body, first.Status, first.Body)
		}
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay %d lacks Idempotent-Replayed: true: %v", i, again.Header)
		}
		if ct := again.Header.Get("Content-Type"); ct != first.Header.Get("Content-Type") {
			t.Fatalf("replay Content-Type %q, first %q", ct, first.Header.Get("Content-Type"))
		}
	}
	if n := count(t, e, `SELECT count(*) FROM deployment_objects WHERE stack_id = $1`, stackID); n != 1 {
		t.Fatalf("%d deployment objects, want 1", n)
	}
	if n := count(t, e, `SELECT count(*) FROM outbox_events WHERE event_type = 'deployment.created'`); n != 1 {
		t.Fatalf("%d deployment.created events, want 1", n)
	}
	if n := count(t, e, `SELECT count(*) FROM audit_logs WHERE action = 'deployment.created'`); n != 1 {
		t.Fatalf("%d audit entries, want 1", n)
	}
	// Without a key (or with another one) the same body is a new object, as today.
	e.Must(201, "POST", path, e.AdminPAK, body)
	withKey(e, "POST", path, e.AdminPAK, body, "deploy-2")
	if n := count(t, e, `SELECT count(*) FROM deployment_objects WHERE stack_id = $1`, stackID); n != 3 {
		t.Fatalf("%d deployment objects, want 3", n)
	}
}

// TestIdempotencyEveryCreate: every listed create replays instead of
// creating twice. One request per route, each sent twice.
func TestIdempotencyEveryCreate(t *testing.T) {
	e := apitest.New(t)
	ag := e.CreateAgent("idem-agent", "c1")
	gen := e.CreateGenerator("idem-gen")
	stackID := e.CreateStack(e.AdminPAK, "idem-every")
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]any{"agent_id": ag.ID, "stack_id": stackID})
	objID, _ := e.Deploy(e.AdminPAK, stackID, cmYAML("every"))
	tplBody := map[string]any{"name": "idem-tpl", "template_content": "name: {{ name }}",
		"parameters_schema": `{"type":"object","properties":{"name":{"type":"string"}}}`}
	cases := []struct {
		name, method, path, pak string
		body                    any
		table                   string
	}{
		{"agents", "POST", "/api/v1/agents", e.AdminPAK, map[string]any{"name": "a2", "cluster_name": "c2"}, "agents"},
		{"generators", "POST", "/api/v1/generators", e.AdminPAK, map[string]any{"name": "g2"}, "generators"},
		{"stacks", "POST", "/api/v1/stacks", gen.PAK, map[string]any{"name": "s2"}, "stacks"},
		{"stack labels", "POST", "/api/v1/stacks/" + stackID + "/labels", e.AdminPAK, `"env:prod"`, "stack_labels"},
		{"stack annotations", "POST", "/api/v1/stacks/" + stackID + "/annotations", e.AdminPAK,
			map[string]any{"stack_id": stackID, "key": "k", "value": "v"}, "stack_annotations"},
		{"agent labels", "POST", "/api/v1/agents/" + ag.ID + "/labels", e.AdminPAK,
			map[string]any{"agent_id": ag.ID, "label": "zone:a"}, "agent_labels"},
		{"agent annotations", "POST", "/api/v1/agents/" + ag.ID + "/annotations", e.AdminPAK,
			map[string]any{"agent_id": ag.ID, "key": "k", "value": "v"}, "agent_annotations"},
		{"events", "POST", "/api/v1/agents/" + ag.ID + "/events", ag.PAK,
			map[string]any{"deployment_object_id": objID, "event_type": "DEPLOY", "status": "SUCCESS"}, "agent_events"},
		{"templates", "POST", "/api/v1/templates", e.AdminPAK, tplBody, "stack_templates"},
		{"work orders", "POST", "/api/v1/work-orders", e.AdminPAK, map[string]any{"work_type": "custom",
			"yaml_content": cmYAML("wo"), "target_agent_ids": []string{ag.ID}}, "work_orders"},
		{"schedules", "POST", "/api/v1/work-order-schedules", e.AdminPAK, map[string]any{"name": "nightly",
			"cron_expression": "0 0 * * *", "work_type": "custom", "yaml_content": cmYAML("sched"),
			"targeting": map[string]any{"agent_ids": []string{ag.ID}}}, "work_order_schedules"},
		{"webhooks", "POST", "/api/v1/webhooks", e.AdminPAK, map[string]any{"name": "hook",
			"url": "https://example.com/hook", "event_types": []string{"deployment.created"}}, "webhook_subscriptions"},
		{"diagnostics", "POST", "/api/v1/deployment-objects/" + objID + "/diagnostics", e.AdminPAK,
			map[string]any{"agent_id": ag.ID}, "diagnostic_requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := count(t, e, "SELECT count(*) FROM "+c.table)
			key := "every-" + c.name
			first := withKey(e, c.method, c.path, c.pak, c.body, key)
			if first.Status < 200 || first.Status > 299 {
				t.Fatalf("first: %d %s", first.Status, first.Body)
			}
			second := withKey(e, c.method, c.path, c.pak, c.body, key)
			if second.Status != first.Status || !bytes.Equal(second.Body, first.Body) || second.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay: %d %s (replayed %q), want %d %s", second.Status, second.Body,
					second.Header.Get("Idempotent-Replayed"), first.Status, first.Body)
			}
			if after := count(t, e, "SELECT count(*) FROM "+c.table); after != before+1 {
				t.Fatalf("%s: %d rows after, %d before; want exactly one more", c.table, after, before)
			}
		})
	}
	// Targets, and instantiating the template created above.
	stack2 := e.CreateStack(e.AdminPAK, "idem-every-2")
	var tpl []struct {
		ID string `json:"id"`
	}
	e.Must(200, "GET", "/api/v1/templates", e.AdminPAK, nil).JSON(t, &tpl)
	if len(tpl) != 1 {
		t.Fatalf("%d templates, want the one created above", len(tpl))
	}
	for _, c := range []struct {
		name, path, table string
		body              any
	}{
		{"targets", "/api/v1/agents/" + ag.ID + "/targets", "agent_targets", map[string]any{"agent_id": ag.ID, "stack_id": stack2}},
		{"from-template", "/api/v1/stacks/" + stack2 + "/deployment-objects/from-template", "deployment_objects",
			map[string]any{"template_id": tpl[0].ID, "parameters": map[string]any{"name": "x"}}},
	} {
		before := count(t, e, "SELECT count(*) FROM "+c.table)
		first := withKey(e, "POST", c.path, e.AdminPAK, c.body, "more-"+c.name)
		second := withKey(e, "POST", c.path, e.AdminPAK, c.body, "more-"+c.name)
		// Targets answer 201, instantiation 200; a replay answers the same.
		if first.Status/100 != 2 || second.Status != first.Status || !bytes.Equal(first.Body, second.Body) || second.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("%s: %d %s / %d %s", c.name, first.Status, first.Body, second.Status, second.Body)
		}
		if after := count(t, e, "SELECT count(*) FROM "+c.table); after != before+1 {
			t.Fatalf("%s: %d rows after, %d before", c.name, after, before)
		}
	}

	// The stored response of an agent creation holds its PAK: it must be
	// sealed at rest, never in clear.
	r := withKey(e, "POST", "/api/v1/agents", e.AdminPAK, map[string]any{"name": "sealed", "cluster_name": "c"}, "sealed")
	pak := r.Map(t)["initial_pak"].(string)
	var bodies [][]byte
	if err := e.Store.DB().SelectContext(context.Background(), &bodies, `SELECT body FROM idempotency_keys`); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte(pak)) || bytes.Contains(b, []byte(`"agent"`)) {
			t.Fatalf("a stored response is in clear: %q", b)
		}
	}
}

// TestIdempotencyMismatch: the same key with another body, path or method
// is 422 and changes nothing; a key that ended in an error was not stored,
// so the corrected request may reuse it.
func TestIdempotencyMismatch(t *testing.T) {
	e := apitest.New(t)
	e.Must(201, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "taken"})
	r := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "one"}, "k1")
	if r.Status != 201 {
		t.Fatalf("first: %d %s", r.Status, r.Body)
	}
	msg := wantError(t, withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "two"}, "k1"), 422, "other body")
	if !strings.Contains(msg, "Idempotency-Key") {
		t.Fatalf("422 message %q does not name the header", msg)
	}
	gen := e.CreateGenerator("mismatch-gen")
	wantError(t, withKey(e, "POST", "/api/v1/generators", e.AdminPAK, map[string]any{"name": "one"}, "k1"), 422, "other path")
	if n := count(t, e, `SELECT count(*) FROM stacks WHERE name = 'two'`); n != 0 {
		t.Fatalf("a mismatched key created a stack")
	}
	_ = gen

	// Errors are not stored: the rollback left no effect to protect.
	wantError(t, withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "taken"}, "k2"), 409, "duplicate name")
	wantError(t, withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": ""}, "k2"), 400, "empty name")
	if r := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "fixed"}, "k2"); r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("corrected request with the key of a failed one: %d %v %s", r.Status, r.Header, r.Body)
	}

	// Bad keys are a 400; the header on a route outside the list is ignored.
	wantError(t, withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "long"}, strings.Repeat("x", 256)), 400, "256-character key")
	wantError(t, withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "ctl"}, "a\tb"), 400, "control character")
	if r := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": strings.Repeat("y", 10)}, strings.Repeat("x", 255)); r.Status != 201 {
		t.Fatalf("255-character key: %d %s", r.Status, r.Body)
	}
	e.Must(200, "GET", "/api/v1/stacks", e.AdminPAK, nil)
	if r := e.Do("GET", "/api/v1/stacks", e.AdminPAK, nil, "Idempotency-Key", "k1"); r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("GET with a key: %d %v", r.Status, r.Header)
	}
}

// TestIdempotencyConcurrentDuplicates: many copies of one request at once
// make exactly one effect; every other copy is a replay of the same
// response or a 409 telling it to retry.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	e := apitest.New(t)
	stackID := e.CreateStack(e.AdminPAK, "race")
	path := "/api/v1/stacks/" + stackID + "/deployment-objects"
	body := map[string]any{"yaml_content": cmYAML("race")}
	const n = 16
	for round := 0; round < 3; round++ {
		key := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		res := make([]apitest.Response, n)
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				res[i] = withKey(e, "POST", path, e.AdminPAK, body, key)
			})
		}
		close(start)
		wg.Wait()
		var ok [][]byte
		conflicts := 0
		for _, r := range res {
			switch r.Status {
			case 201:
				ok = append(ok, r.Body)
			case 409:
				conflicts++
				if r.Header.Get("Retry-After") == "" {
					t.Fatalf("409 without Retry-After: %s", r.Body)
				}
				errorMessage(t, r, "in-flight 409")
			default:
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
		if len(ok) == 0 {
			t.Fatal("no copy succeeded")
		}
		for _, b := range ok[1:] {
			if !bytes.Equal(b, ok[0]) {
				t.Fatalf("two different successful responses:\n%s\n%s", ok[0], b)
			}
		}
		t.Logf("round %d: %d successes (one effect + replays), %d in-flight 409s", round, len(ok), conflicts)
	}
	if c := count(t, e, `SELECT count(*) FROM deployment_objects WHERE stack_id = $1`, stackID); c != 3 {
		t.Fatalf("%d deployment objects after 3 rounds of %d duplicates, want 3", c, n)
	}
}

// TestIdempotencyInFlightIs409: while the first request holds its key (its
// transaction is open), a copy is answered 409 at once, not queued.
func TestIdempotencyInFlightIs409(t *testing.T) {
	e := apitest.New(t)
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- e.Store.InTx(context.Background(), func(ctx context.Context) error {
			ok, err := postgres.NewIdempotencyKeys(e.Store).LockIdempotencyKey(ctx, "admin", "slow")
			if err != nil || !ok {
				return fmt.Errorf("lock: %v %v", ok, err)
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	r := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "slow"}, "slow")
	wantErrorCode(t, r, 409, "request_in_flight", "in flight")
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("in-flight 409 has no Retry-After")
	}
	// Another identity's key of the same name is not blocked.
	gen := e.CreateGenerator("other")
	if r := withKey(e, "POST", "/api/v1/stacks", gen.PAK, map[string]any{"name": "gen-slow"}, "slow"); r.Status != 201 {
		t.Fatalf("other identity: %d %s", r.Status, r.Body)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "slow"}, "slow"); r.Status != 201 {
		t.Fatalf("after release: %d %s", r.Status, r.Body)
	}
	if c := count(t, e, `SELECT count(*) FROM stacks WHERE name = 'slow'`); c != 1 {
		t.Fatalf("%d stacks named slow, want 1", c)
	}
}

// TestIdempotencyPerIdentity: the same key from two callers is two keys;
// neither sees the other's response.
func TestIdempotencyPerIdentity(t *testing.T) {
	e := apitest.New(t)
	g1, g2 := e.CreateGenerator("g1"), e.CreateGenerator("g2")
	r1 := withKey(e, "POST", "/api/v1/stacks", g1.PAK, map[string]any{"name": "same"}, "shared")
	r2 := withKey(e, "POST", "/api/v1/stacks", g2.PAK, map[string]any{"name": "same2"}, "shared")
	r3 := withKey(e, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "same3"}, "shared")
	for i, r := range []apitest.Response{r1, r2, r3} {
		if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("caller %d: %d %v %s", i, r.Status, r.Header, r.Body)
		}
	}
	owners := map[string]bool{}
	for _, r := range []apitest.Response{r1, r2} {
		owners[fmt.Sprint(r.Map(t)["generator_id"])] = true
	}
	if !owners[g1.ID] || !owners[g2.ID] {
		t.Fatalf("stacks not owned by their callers: %v", owners)
	}
	// Each replays its own response.
	if again := withKey(e, "POST", "/api/v1/stacks", g2.PAK, map[string]any{"name": "same2"}, "shared"); !bytes.Equal(again.Body, r2.Body) {
		t.Fatalf("g2 replay %s, want %s", again.Body, r2.Body)
	}
	// An agent's key is its own too.
	a1, a2 := e.CreateAgent("a1", "c"), e.CreateAgent("a2", "c")
	evStack := e.CreateStack(e.AdminPAK, "ev-stack")
	objID, _ := e.Deploy(e.AdminPAK, evStack, cmYAML("ev"))
	for _, a := range []apitest.Agent{a1, a2} {
		// Agents report only on objects of stacks they are associated with.
		e.Must(201, "POST", "/api/v1/agents/"+a.ID+"/targets", e.AdminPAK, map[string]any{"agent_id": a.ID, "stack_id": evStack})
		r := withKey(e, "POST", "/api/v1/agents/"+a.ID+"/events", a.PAK,
			map[string]any{"deployment_object_id": objID, "event_type": "DEPLOY", "status": "SUCCESS"}, "ev")
		if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" || r.Map(t)["agent_id"] != a.ID {
			t.Fatalf("agent %s event: %d %v %s", a.ID, r.Status, r.Header, r.Body)
		}
	}
	if c := count(t, e, `SELECT count(*) FROM idempotency_keys WHERE key = 'shared'`); c != 3 {
		t.Fatalf("%d stored keys named shared, want 3 (one per identity)", c)
	}
}

// TestIdempotencyExpiry: the maintenance sweep forgets keys older than the
// window; a request with a forgotten key runs again.
func TestIdempotencyExpiry(t *testing.T) {
	e := apitest.New(t)
	stackID := e.CreateStack(e.AdminPAK, "expiry")
	path := "/api/v1/stacks/" + stackID + "/deployment-objects"
	body := map[string]any{"yaml_content": cmYAML("exp")}
	old := withKey(e, "POST", path, e.AdminPAK, body, "old")
	recent := withKey(e, "POST", path, e.AdminPAK, body, "recent")
	ctx := context.Background()
	if _, err := e.Store.DB().ExecContext(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.DB().ExecContext(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '23 hours' WHERE key = 'recent'`); err != nil {
		t.Fatal(err)
	}
	house := housekeeping.NewService(postgres.HousekeepingRepos(e.Store), func() housekeeping.Retention {
		return housekeeping.Retention{IdempotencyKeys: 24 * time.Hour}
	})
	n, err := house.PurgeIdempotencyKeys(ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v; want 1", n, err)
	}
	if r := withKey(e, "POST", path, e.AdminPAK, body, "recent"); r.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.Body, recent.Body) {
		t.Fatalf("key within the window not replayed: %d %v", r.Status, r.Header)
	}
	r := withKey(e, "POST", path, e.AdminPAK, body, "old")
	if r.Status != 201 || r.Header.Get("Idempotent-Replayed") != "" || bytes.Equal(r.Body, old.Body) {
		t.Fatalf("expired key replayed: %d %v %s", r.Status, r.Header, r.Body)
	}
	if c := count(t, e, `SELECT count(*) FROM deployment_objects WHERE stack_id = $1`, stackID); c != 3 {
		t.Fatalf("%d objects, want 3", c)
	}
}

// TestIdempotentRoutesMountedAndDocumented: every route in the list is a
// mounted route (a renamed route cannot silently drop out), and the OpenAPI
// spec references the IdempotencyKey parameter on exactly these operations.
func TestIdempotentRoutesMountedAndDocumented(t *testing.T) {
	r := gin.New()
	httpapi.Register(r, httpapi.Services{})
	mounted := map[string]bool{}
	for _, ri := range r.Routes() {
		mounted[ri.Method+" "+ri.Path] = true
	}
	routes := httpapi.IdempotentRoutes()
	sort.Strings(routes)
	for _, r := range routes {
		if !mounted[r] {
			t.Errorf("idempotent route %q is not mounted", r)
		}
	}
	if !slices.Contains(routes, "POST /api/v1/stacks/:id/deployment-objects") || len(routes) != 23 {
		t.Fatalf("route list changed (%d): %v", len(routes), routes)
	}

	raw, err := apidocs.SpecJSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for p, item := range doc.Paths {
		for m, op := range item {
			var o struct {
				Parameters []struct {
					Ref string `json:"$ref"`
				} `json:"parameters"`
			}
			if json.Unmarshal(op, &o) != nil {
				continue
			}
			for _, prm := range o.Parameters {
				if prm.Ref == "#/components/parameters/IdempotencyKey" {
					documented = append(documented, strings.ToUpper(m)+" "+apidocs.GinPath(p))
				}
			}
		}
	}
	sort.Strings(documented)
	if !slices.Equal(documented, routes) {
		t.Fatalf("spec documents Idempotency-Key on\n%v\nthe api honours it on\n%v", documented, routes)
	}
}

// TestIdempotencyNotifiesAfterCommit: a keyed create wakes target-state
// long-polls only once its transaction (which the use case merely joined)
// has committed, so no agent wakes up to read the state before it.
func TestIdempotencyNotifiesAfterCommit(t *testing.T) {
	e := apitest.New(t)
	ag := e.CreateAgent("notify-agent", "c")
	stackID := e.CreateStack(e.AdminPAK, "notify")
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]any{"agent_id": ag.ID, "stack_id": stackID})
	sid := uuid.MustParse(stackID)
	if !e.Changes.Subscribed() {
		t.Fatal("change notifications are not flowing through Redis")
	}
	// Every published change wakes a watcher, so a premature one shows.
	ch, cancel := e.Changes.Watch()
	defer cancel()
	select { // the subscription's own wake-up, if it is still pending
	case <-ch:
	default:
	}
	stacksSvc := stacks.NewService(postgres.StackRepos(e.Store), e.Changes)
	svc := idempotency.NewService(e.Store, postgres.NewIdempotencyKeys(e.Store), e.WebhookCipher)
	ctx := context.Background()
	out, err := svc.Do(ctx, idempotency.Request{Scope: "admin", Key: "notify", Method: "POST", Path: "/x"},
		func(ctx context.Context) idempotency.Response {
			if _, err := stacksSvc.CreateDeploymentObject(ctx, identity.Admin, sid, stacks.DeploymentInput{YAMLContent: cmYAML("n")}); err != nil {
				t.Errorf("deploy: %v", err)
				return idempotency.Response{Status: 500}
			}
			// Give a premature notification time to come back from Redis.
			select {
			case <-ch:
				t.Error("long-polls were woken before the commit")
			case <-time.After(500 * time.Millisecond):
			}
			return idempotency.Response{Status: 200, Body: []byte("{}")}
		})
	if err != nil || !out.Stored {
		t.Fatalf("Do: %+v %v", out, err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("long-polls were not woken after the commit")
	}
}
