package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

func unknownID() string { return uuid.NewString() }

// systemGeneratorID is the system generator's fixed id (migration 0011).
const systemGeneratorID = "00000000-0000-4000-8000-000000000001"

func registeredGenerators(t *testing.T, e *apitest.Env, ag apitest.Agent) []string {
	t.Helper()
	var regs []map[string]any
	e.Must(200, "GET", v1+"/agents/"+ag.ID+"/registrations", ag.PAK, nil).JSON(t, &regs)
	out := []string{}
	for _, r := range regs {
		out = append(out, r["generator_id"].(string))
	}
	return out
}

// TestRegistrationRoutes: shapes, status codes and error codes of the four
// registration routes, as 0.9.1 documents them.
func TestRegistrationRoutes(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("reg-a", "c")
	b := e.CreateAgent("reg-b", "c")
	g := e.CreateGenerator("reg-g")
	h := e.CreateGenerator("reg-h")

	// Every agent is registered with the system generator at creation.
	if got := registeredGenerators(t, e, a); len(got) != 1 || got[0] != systemGeneratorID {
		t.Fatalf("new agent's registrations = %v, want [system generator]", got)
	}

	// Admin registers another agent: 201 with the registration record.
	r := e.Must(201, "POST", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	m := r.Map(t)
	wantKeys(t, m, "registration", "id", "agent_id", "generator_id", "registered_at")
	wantUUID(t, m["id"], "registration id")
	wantTimestamp(t, m["registered_at"], "registered_at")
	if m["agent_id"] != a.ID || m["generator_id"] != g.ID {
		t.Fatalf("registration = %v", m)
	}
	// Not idempotent.
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID}),
		409, "already_registered", "re-register")
	// An agent registers itself without a body, or naming itself.
	e.Must(201, "POST", v1+"/generators/"+g.ID+"/register", b.PAK, nil)
	e.Must(201, "POST", v1+"/generators/"+h.ID+"/register", b.PAK, map[string]string{"agent_id": b.ID})
	// The admin must name the agent.
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+h.ID+"/register", e.AdminPAK, map[string]string{}),
		400, "missing_agent_id", "admin without agent_id")
	wantErrorCode(t, e.Do("DELETE", v1+"/generators/"+h.ID+"/register", e.AdminPAK, nil),
		400, "missing_agent_id", "admin deregister without agent_id")
	// Unknown generator, unknown agent.
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+unknownID()+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID}),
		404, "generator_not_found", "unknown generator")
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+h.ID+"/register", e.AdminPAK, map[string]string{"agent_id": unknownID()}),
		404, "agent_not_found", "unknown agent")
	// A generator may never (de)register, even with itself; an agent only itself.
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+g.ID+"/register", g.PAK, map[string]string{"agent_id": a.ID}),
		403, "forbidden", "generator registers")
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+h.ID+"/register", b.PAK, map[string]string{"agent_id": a.ID}),
		403, "forbidden", "agent registers another agent")

	// Listings.
	var regs []map[string]any
	e.Must(200, "GET", v1+"/generators/"+g.ID+"/registered-agents", g.PAK, nil).JSON(t, &regs)
	if len(regs) != 2 {
		t.Fatalf("registered-agents of g = %v, want a and b", regs)
	}
	if got := registeredGenerators(t, e, b); len(got) != 3 || !contains(got, systemGeneratorID) || !contains(got, g.ID) || !contains(got, h.ID) {
		t.Fatalf("b's registrations = %v", got)
	}
	wantError(t, e.Do("GET", v1+"/generators/"+g.ID+"/registered-agents", h.PAK, nil), 403, "another generator's agents")
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID+"/registrations", b.PAK, nil), 403, "another agent's registrations")
	// The system generator lists the whole fleet: admin only.
	e.Must(200, "GET", v1+"/generators/"+systemGeneratorID+"/registered-agents", e.AdminPAK, nil).JSON(t, &regs)
	if len(regs) != 2 {
		t.Fatalf("system generator's agents = %v, want both agents", regs)
	}

	// Deregistering: 204, also for a pair that is not registered.
	e.Must(204, "DELETE", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	e.Must(204, "DELETE", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	e.Must(204, "DELETE", v1+"/generators/"+g.ID+"/register", b.PAK, nil)
	e.Must(200, "GET", v1+"/generators/"+g.ID+"/registered-agents", e.AdminPAK, nil).JSON(t, &regs)
	if len(regs) != 0 {
		t.Fatalf("after deregistering both: %v", regs)
	}
}

// TestSystemGenerator: hidden from the listing, is_system everywhere,
// unchangeable, and what system stacks answer in generator_id.
func TestSystemGenerator(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("sys-g")
	var list []map[string]any
	e.Must(200, "GET", v1+"/generators", e.AdminPAK, nil).JSON(t, &list)
	for _, x := range list {
		if x["id"] == systemGeneratorID || x["is_system"] != false {
			t.Fatalf("listing shows %v", x)
		}
	}
	sys := e.Must(200, "GET", v1+"/generators/"+systemGeneratorID, e.AdminPAK, nil).Map(t)
	if sys["is_system"] != true || sys["name"] != "__system__" {
		t.Fatalf("system generator = %v", sys)
	}
	if own := e.Must(200, "GET", v1+"/generators/"+g.ID, g.PAK, nil).Map(t); own["is_system"] != false {
		t.Fatalf("ordinary generator is_system = %v", own["is_system"])
	}
	wantErrorCode(t, e.Do("DELETE", v1+"/generators/"+systemGeneratorID, e.AdminPAK, nil),
		403, "cannot_delete_system_generator", "delete the system generator")
	wantErrorCode(t, e.Do("PUT", v1+"/generators/"+systemGeneratorID, e.AdminPAK, map[string]string{"name": "x"}),
		403, "cannot_modify_system_generator", "rename the system generator")
	wantErrorCode(t, e.Do("POST", v1+"/generators/"+systemGeneratorID+"/rotate-pak", e.AdminPAK, nil),
		403, "cannot_modify_system_generator", "give the system generator a PAK")
	wantError(t, e.Do("POST", v1+"/generators", e.AdminPAK, map[string]string{"name": "__system__"}), 409, "take the name")

	// Admin stacks answer the system generator's id, never null, in every
	// answer; a generator's stacks their generator's.
	sysStack := e.CreateStack(e.AdminPAK, "sys-stack")
	e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]string{"name": "sys-stack-2", "generator_id": systemGeneratorID})
	owned := e.CreateStack(g.PAK, "owned-stack")
	if m := e.Must(200, "GET", v1+"/stacks/"+sysStack, e.AdminPAK, nil).Map(t); m["generator_id"] != systemGeneratorID {
		t.Fatalf("system stack generator_id = %v", m["generator_id"])
	}
	e.Must(200, "GET", v1+"/stacks", e.AdminPAK, nil).JSON(t, &list)
	for _, st := range list {
		want := systemGeneratorID
		if st["id"] == owned {
			want = g.ID
		}
		if st["generator_id"] != want {
			t.Fatalf("stack %v: generator_id %v, want %s", st["name"], st["generator_id"], want)
		}
	}
	// Still system stacks: the generator does not see them.
	e.Must(200, "GET", v1+"/stacks", g.PAK, nil).JSON(t, &list)
	if len(list) != 1 || list[0]["id"] != owned {
		t.Fatalf("generator's stacks = %v", list)
	}
}

// boundaryWorld: agent A has label "edge", annotation zone=a; generator G
// owns three stacks reaching A by target, label and annotation; an admin
// (system) stack reaches A by label.
type boundaryWorld struct {
	e                          *apitest.Env
	a                          apitest.Agent
	g                          apitest.Generator
	byTarget, byLabel, byAnnot string
	objTarget, objLabel, objAn string
	objSystem                  string
}

func newBoundaryWorld(t *testing.T, opts ...apitest.Option) *boundaryWorld {
	e := apitest.New(t, opts...)
	w := &boundaryWorld{e: e, a: e.CreateAgent("boundary", "c"), g: e.CreateGenerator("boundary-g")}
	e.Must(201, "POST", v1+"/agents/"+w.a.ID+"/labels", e.AdminPAK, `"edge"`)
	e.Must(201, "POST", v1+"/agents/"+w.a.ID+"/annotations", e.AdminPAK, map[string]string{"key": "zone", "value": "a"})
	w.byTarget = e.CreateStack(w.g.PAK, "b-target")
	w.byLabel = e.CreateStack(w.g.PAK, "b-label")
	w.byAnnot = e.CreateStack(w.g.PAK, "b-annot")
	system := e.CreateStack(e.AdminPAK, "b-system")
	e.Must(201, "POST", v1+"/stacks/"+w.byLabel+"/labels", w.g.PAK, `"edge"`)
	e.Must(201, "POST", v1+"/stacks/"+system+"/labels", e.AdminPAK, `"edge"`)
	e.Must(201, "POST", v1+"/stacks/"+w.byAnnot+"/annotations", w.g.PAK, map[string]string{"key": "zone", "value": "a"})
	w.objTarget, _ = e.Deploy(w.g.PAK, w.byTarget, cmYAML("t"))
	w.objLabel, _ = e.Deploy(w.g.PAK, w.byLabel, cmYAML("l"))
	w.objAn, _ = e.Deploy(w.g.PAK, w.byAnnot, cmYAML("n"))
	w.objSystem, _ = e.Deploy(e.AdminPAK, system, cmYAML("s"))
	return w
}

// TestConsentBoundaryOff: the default keeps the seed's association rules:
// no registration needed on any path; deregistering still removes the
// generator's explicit targets.
func TestConsentBoundaryOff(t *testing.T) {
	t.Parallel()
	w := newBoundaryWorld(t)
	e, a := w.e, w.a
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": w.byTarget})
	wantObjects(t, targetState(e, a, ""), "boundary off", w.objTarget, w.objLabel, w.objAn, w.objSystem)

	// Registering then deregistering removes the explicit target; label and
	// annotation matches stay (nothing limits them with the boundary off).
	e.Must(201, "POST", v1+"/generators/"+w.g.ID+"/register", a.PAK, nil)
	e.Must(204, "DELETE", v1+"/generators/"+w.g.ID+"/register", a.PAK, nil)
	var targets []map[string]any
	e.Must(200, "GET", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, nil).JSON(t, &targets)
	if len(targets) != 0 {
		t.Fatalf("targets after deregistration = %v", targets)
	}
	wantObjects(t, targetState(e, a, ""), "boundary off, deregistered", w.objLabel, w.objAn, w.objSystem)
}

// TestConsentBoundaryOn: with broker.require_generator_registration, G's
// stacks reach A by no path until A registers with G, and stop reaching it
// when it deregisters; system stacks reach every agent.
func TestConsentBoundaryOn(t *testing.T) {
	t.Parallel()
	w := newBoundaryWorld(t, apitest.WithRegistrationBoundary())
	e, a := w.e, w.a
	wantErrorCode(t, e.Do("POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": w.byTarget}),
		403, "agent_not_registered", "target before registration")
	wantObjects(t, targetState(e, a, ""), "unregistered", w.objSystem)
	if got := ids(t, e.Must(200, "GET", v1+"/agents/"+a.ID+"/stacks", a.PAK, nil)); len(got) != 1 {
		t.Fatalf("associated stacks before registration = %v, want the system stack only", got)
	}

	e.Must(201, "POST", v1+"/generators/"+w.g.ID+"/register", a.PAK, nil)
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": w.byTarget})
	wantObjects(t, targetState(e, a, ""), "registered", w.objTarget, w.objLabel, w.objAn, w.objSystem)

	// A second agent with the same label and annotation, not registered,
	// gets only the system stack: labels cannot cross the boundary.
	b := e.CreateAgent("boundary-b", "c")
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/labels", e.AdminPAK, `"edge"`)
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/annotations", e.AdminPAK, map[string]string{"key": "zone", "value": "a"})
	wantObjects(t, targetState(e, b, ""), "unregistered twin", w.objSystem)

	// Deregistration: the index drops A's answer at once (a long-poll of
	// the old ETag wakes), the target is gone, only the system stack stays.
	before := e.Must(200, "GET", v1+"/agents/"+a.ID+"/target-state", a.PAK, nil)
	e.Must(204, "DELETE", v1+"/generators/"+w.g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	after := e.Do("GET", v1+"/agents/"+a.ID+"/target-state?wait=5", a.PAK, nil, "If-None-Match", before.Header.Get("ETag"))
	if after.Status != http.StatusOK {
		t.Fatalf("target state after deregistration: %d, want 200 with the pruned answer", after.Status)
	}
	wantObjects(t, targetState(e, a, ""), "deregistered", w.objSystem)
	wantErrorCode(t, e.Do("DELETE", v1+"/agents/"+a.ID+"/targets/"+w.byTarget, e.AdminPAK, nil),
		403, "agent_not_registered", "remove a target after deregistration")

	// Deregistering from the system generator cuts system stacks too.
	e.Must(204, "DELETE", v1+"/generators/"+systemGeneratorID+"/register", a.PAK, nil)
	wantObjects(t, targetState(e, a, ""), "deregistered from system")
}
