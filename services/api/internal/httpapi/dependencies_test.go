package httpapi_test

import (
	"slices"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// stackBody is the part of a stack body these tests read.
type stackBody struct {
	ID        string   `json:"id"`
	DependsOn []string `json:"depends_on"`
}

// explained is GET /agents/{id}/target-state?explain=true.
type explained struct {
	Objects  []object `json:"objects"`
	Withheld []struct {
		StackID            string `json:"stack_id"`
		DeploymentObjectID string `json:"deployment_object_id"`
		SequenceID         int64  `json:"sequence_id"`
		WaitingFor         []struct {
			StackID            string  `json:"stack_id"`
			DeploymentObjectID *string `json:"deployment_object_id"`
			Reason             string  `json:"reason"`
			Health             *string `json:"health"`
		} `json:"waiting_for"`
	} `json:"withheld"`
}

func explain(e *apitest.Env, ag apitest.Agent, query string) explained {
	e.T.Helper()
	var out explained
	r := e.Must(200, "GET", v1+"/agents/"+ag.ID+"/target-state?explain=true"+query, ag.PAK, nil)
	if r.Header.Get("ETag") != "" || r.Header.Get("Cache-Control") != "no-store" {
		e.T.Fatalf("explain headers %v", r.Header)
	}
	r.JSON(e.T, &out)
	if out.Objects == nil || out.Withheld == nil {
		e.T.Fatalf("explain body %s: objects and withheld must be arrays", r.Body)
	}
	return out
}

func reportHealth(e *apitest.Env, ag apitest.Agent, objectID, status string) {
	e.T.Helper()
	e.Must(200, "PATCH", v1+"/agents/"+ag.ID+"/health-status", ag.PAK, map[string]any{
		"deployment_objects": []map[string]any{{"id": objectID, "status": status,
			"checked_at": time.Now().UTC().Format(time.RFC3339Nano)}}})
}

func stackOf(t *testing.T, r apitest.Response) stackBody {
	t.Helper()
	var s stackBody
	r.JSON(t, &s)
	if s.DependsOn == nil {
		t.Fatalf("stack body without a depends_on array: %s", r.Body)
	}
	return s
}

// depends_on is set on create and update, read back on every stack body,
// and refused with 422 for a self edge, a cycle, an unknown stack and
// another owner's stack; a depended-on stack cannot be deleted (409).
func TestStackDependsOnRules(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	db := e.CreateStack(e.AdminPAK, unique("db"))
	if s := stackOf(t, e.Must(200, "GET", v1+"/stacks/"+db, e.AdminPAK, nil)); len(s.DependsOn) != 0 {
		t.Fatalf("new stack depends on %v", s.DependsOn)
	}
	app := stackOf(t, e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{
		"name": unique("app"), "depends_on": []string{db, db}}))
	if !slices.Equal(app.DependsOn, []string{db}) {
		t.Fatalf("created with depends_on %v, want [%s]", app.DependsOn, db)
	}
	if s := stackOf(t, e.Must(200, "GET", v1+"/stacks/"+app.ID, e.AdminPAK, nil)); !slices.Equal(s.DependsOn, []string{db}) {
		t.Fatalf("get: depends_on %v", s.DependsOn)
	}
	var list []stackBody
	e.Must(200, "GET", v1+"/stacks", e.AdminPAK, nil).JSON(t, &list)
	for _, s := range list {
		if s.DependsOn == nil || (s.ID == app.ID && !slices.Equal(s.DependsOn, []string{db})) {
			t.Fatalf("list: %+v", list)
		}
	}

	wantCode(t, e.Do("PUT", v1+"/stacks/"+db, e.AdminPAK, map[string]any{"depends_on": []string{db}}), 422, "dependency_cycle")
	wantCode(t, e.Do("PUT", v1+"/stacks/"+db, e.AdminPAK, map[string]any{"depends_on": []string{app.ID}}), 422, "dependency_cycle")
	wantCode(t, e.Do("POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": unique("x"),
		"depends_on": []string{"5b8f6ab3-5f77-4a33-9cb5-2c0b5e1f0000"}}), 422, "dependency_not_found")
	// A longer cycle: db -> cache -> app -> db.
	cache := stackOf(t, e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{
		"name": unique("cache"), "depends_on": []string{app.ID}}))
	wantCode(t, e.Do("PUT", v1+"/stacks/"+db, e.AdminPAK, map[string]any{"depends_on": []string{cache.ID}}), 422, "dependency_cycle")

	// Another owner: a generator's stack may not depend on a system stack
	// nor on another generator's stack, and the reverse.
	g1, g2 := e.CreateGenerator(unique("g1")), e.CreateGenerator(unique("g2"))
	mine := e.CreateStack(g1.PAK, unique("mine"))
	theirs := e.CreateStack(g2.PAK, unique("theirs"))
	wantCode(t, e.Do("PUT", v1+"/stacks/"+mine, g1.PAK, map[string]any{"depends_on": []string{theirs}}), 422, "dependency_cross_generator")
	wantCode(t, e.Do("PUT", v1+"/stacks/"+mine, g1.PAK, map[string]any{"depends_on": []string{db}}), 422, "dependency_cross_generator")
	wantCode(t, e.Do("PUT", v1+"/stacks/"+db, e.AdminPAK, map[string]any{"depends_on": []string{mine}}), 422, "dependency_cross_generator")
	own := stackOf(t, e.Must(201, "POST", v1+"/stacks", g1.PAK, map[string]any{"name": unique("own"), "depends_on": []string{mine}}))
	if !slices.Equal(own.DependsOn, []string{mine}) {
		t.Fatalf("generator's own dependency: %v", own.DependsOn)
	}
	// The agent-facing list of associated stacks carries it too.
	ag := e.CreateAgent(unique("reader"), "c")
	e.Must(201, "POST", v1+"/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": app.ID})
	var assoc []stackBody
	e.Must(200, "GET", v1+"/agents/"+ag.ID+"/stacks", ag.PAK, nil).JSON(t, &assoc)
	if len(assoc) != 1 || !slices.Equal(assoc[0].DependsOn, []string{db}) {
		t.Fatalf("associated stacks %+v", assoc)
	}

	// Deleting a depended-on stack is refused until nothing depends on it.
	wantCode(t, e.Do("DELETE", v1+"/stacks/"+db, e.AdminPAK, nil), 409, "stack_has_dependents")
	// A rename keeps the dependencies; null clears them.
	if s := stackOf(t, e.Must(200, "PUT", v1+"/stacks/"+app.ID, e.AdminPAK, map[string]any{"name": unique("app2")})); !slices.Equal(s.DependsOn, []string{db}) {
		t.Fatalf("after rename: %v", s.DependsOn)
	}
	if s := stackOf(t, e.Must(200, "PUT", v1+"/stacks/"+app.ID, e.AdminPAK, map[string]any{"depends_on": nil})); len(s.DependsOn) != 0 {
		t.Fatalf("after clearing: %v", s.DependsOn)
	}
	e.Must(204, "DELETE", v1+"/stacks/"+db, e.AdminPAK, nil)
}

// Dependencies hold per agent: each agent receives app's object only once
// db's latest object is SUCCESS and healthy on that same agent; an agent
// whose db is not ready keeps the app object it has; its long-poll wakes
// when db becomes healthy there. A gated stack's new object never reaches
// an agent through the index's head patching.
func TestDependenciesHoldPerAgent(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	db := e.CreateStack(e.AdminPAK, unique("db"))
	app := stackOf(t, e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{
		"name": unique("app"), "depends_on": []string{db}})).ID
	a, b := e.CreateAgent(unique("a"), "c"), e.CreateAgent(unique("b"), "c")
	lone := e.CreateAgent(unique("lone"), "c") // app only, db not associated
	for _, ag := range []apitest.Agent{a, b} {
		e.Must(201, "POST", v1+"/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": db})
		e.Must(201, "POST", v1+"/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": app})
	}
	e.Must(201, "POST", v1+"/agents/"+lone.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": app})
	db1, _ := e.Deploy(e.AdminPAK, db, cmYAML("db1"))
	app1, _ := e.Deploy(e.AdminPAK, app, cmYAML("app1"))

	// Nothing applied yet: app is withheld everywhere, and explained.
	for _, ag := range []apitest.Agent{a, b} {
		wantObjects(t, targetState(e, ag, ""), "before db is applied", db1)
		x := explain(e, ag, "")
		if len(x.Withheld) != 1 || x.Withheld[0].StackID != app || x.Withheld[0].DeploymentObjectID != app1 ||
			len(x.Withheld[0].WaitingFor) != 1 || x.Withheld[0].WaitingFor[0].Reason != "not_applied" ||
			x.Withheld[0].WaitingFor[0].StackID != db {
			t.Fatalf("explain before db is applied: %+v", x)
		}
		wantObjects(t, x.Objects, "explain's objects", db1)
	}
	x := explain(e, lone, "")
	if len(x.Withheld) != 1 || x.Withheld[0].WaitingFor[0].Reason != "not_associated" {
		t.Fatalf("explain without db associated: %+v", x)
	}
	wantObjects(t, targetState(e, lone, ""), "lone agent")

	// Applied but not healthy yet: still withheld (unhealthy).
	ack(e, a, db1, "SUCCESS")
	wantObjects(t, targetState(e, a, ""), "db applied, health not reported")
	if x := explain(e, a, ""); len(x.Withheld) != 1 || x.Withheld[0].WaitingFor[0].Reason != "unhealthy" ||
		x.Withheld[0].WaitingFor[0].Health != nil {
		t.Fatalf("explain, health not reported: %+v", x)
	}
	reportHealth(e, a, db1, "healthy")
	wantObjects(t, targetState(e, a, ""), "db applied and healthy on a", app1)
	wantObjects(t, targetState(e, b, ""), "b is not a", db1)
	ack(e, b, db1, "SUCCESS")
	reportHealth(e, b, db1, "healthy")
	wantObjects(t, targetState(e, b, ""), "db applied and healthy on b", app1)
	for _, ag := range []apitest.Agent{a, b} {
		ack(e, ag, app1, "SUCCESS")
	}

	// db moves on: a applies it, b fails it.
	db2, _ := e.Deploy(e.AdminPAK, db, cmYAML("db2"))
	ack(e, a, db2, "SUCCESS")
	reportHealth(e, a, db2, "healthy")
	ack(e, b, db2, "FAILURE")
	// b's index entry is loaded before app moves on: the new head must not
	// be patched into it.
	wantObjects(t, targetState(e, b, "?mode=full"), "b before app2", app1, db2)
	app2, _ := e.Deploy(e.AdminPAK, app, cmYAML("app2"))
	wantObjects(t, targetState(e, a, "?mode=full"), "a after app2", db2, app2)
	wantObjects(t, targetState(e, b, "?mode=full"), "b keeps app1", app1, db2)
	x = explain(e, b, "")
	if len(x.Withheld) != 1 || x.Withheld[0].DeploymentObjectID != app2 || x.Withheld[0].WaitingFor[0].Reason != "failed" ||
		*x.Withheld[0].WaitingFor[0].DeploymentObjectID != db2 {
		t.Fatalf("explain with db failed on b: %+v", x)
	}
	// b retries db2 and succeeds, but it is degraded.
	ack(e, b, db2, "SUCCESS")
	reportHealth(e, b, db2, "degraded")
	if x := explain(e, b, ""); len(x.Withheld) != 1 || x.Withheld[0].WaitingFor[0].Reason != "unhealthy" ||
		x.Withheld[0].WaitingFor[0].Health == nil || *x.Withheld[0].WaitingFor[0].Health != "degraded" {
		t.Fatalf("explain with db degraded on b: %+v", x)
	}

	// b long-polls; db becoming healthy on b wakes it with app2.
	first := e.Must(200, "GET", v1+"/agents/"+b.ID+"/target-state", b.PAK, nil)
	var none []object
	first.JSON(t, &none)
	wantObjects(t, none, "b waiting")
	done := make(chan apitest.Response, 1)
	go func() {
		done <- e.Do("GET", v1+"/agents/"+b.ID+"/target-state?wait=30s", b.PAK, nil, "If-None-Match", first.Header.Get("ETag"))
	}()
	// Give the poll time to be held (a report before it holds makes it
	// answer at once, with the same body: the assertion holds either way).
	time.Sleep(300 * time.Millisecond)
	reportHealth(e, b, db2, "healthy")
	r := <-done
	if r.Status != 200 {
		t.Fatalf("long-poll: %d %s", r.Status, r.Body)
	}
	var got []object
	r.JSON(t, &got)
	wantObjects(t, got, "b after db healthy", app2)
	if x := explain(e, b, ""); len(x.Withheld) != 0 {
		t.Fatalf("nothing withheld any more: %+v", x)
	}
	// An applied object is not taken back when its dependency degrades.
	ack(e, b, app2, "SUCCESS")
	reportHealth(e, b, db2, "failing")
	wantObjects(t, targetState(e, b, "?mode=full"), "b keeps app2", db2, app2)
}
