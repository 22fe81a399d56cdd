package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// TestPAKListing: GET /paks lists the tenants as 0.9.1's PakSummary {id,
// name}, admin only; POST /auth/pak answers readonly.
func TestPAKListing(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("paks-b")
	h := e.CreateGenerator("paks-a")
	inactive := e.CreateGenerator("paks-c")
	e.Must(200, "PUT", v1+"/generators/"+inactive.ID, e.AdminPAK, map[string]any{"is_active": false})
	gone := e.CreateGenerator("paks-gone")
	e.Must(204, "DELETE", v1+"/generators/"+gone.ID, e.AdminPAK, nil)
	a := e.CreateAgent("paks-agent", "c")

	var list []map[string]any
	e.Must(200, "GET", v1+"/paks", e.AdminPAK, nil).JSON(t, &list)
	var names []string
	ids := map[string]bool{}
	for _, m := range list {
		wantKeys(t, m, "tenant", "id", "name")
		wantUUID(t, m["id"], "tenant id")
		names = append(names, m["name"].(string))
		ids[m["id"].(string)] = true
	}
	// The admin-generator of the first start is a tenant like any other.
	if !slices.Equal(names, []string{"admin-generator", "paks-a", "paks-b", "paks-c"}) {
		t.Fatalf("tenants %v: want the live generators by name (inactive included, deleted and system excluded)", names)
	}
	if !ids[g.ID] || !ids[h.ID] || !ids[inactive.ID] || ids[gone.ID] || ids[systemGeneratorID] {
		t.Fatalf("tenant ids %v", ids)
	}
	for _, p := range []string{a.PAK, g.PAK} {
		wantErrorCode(t, e.Do("GET", v1+"/paks", p, nil), http.StatusForbidden, "admin_required", "GET /paks as non-admin")
	}

	for _, p := range []string{e.AdminPAK, a.PAK, g.PAK} {
		m := e.Must(200, "POST", v1+"/auth/pak", p, map[string]any{}).Map(t)
		wantKeys(t, m, "auth payload", "admin", "agent", "generator", "readonly")
		if m["readonly"] != false {
			t.Fatalf("readonly = %v, want false", m["readonly"])
		}
	}
}

// TestCreateAgentWithGenerators: POST /agents' generator_ids registers the
// new agent; an unknown id is 400 invalid_generator_id and creates
// nothing. GET /agents is tenant-scoped for generators.
func TestCreateAgentWithGenerators(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("pre-g")
	h := e.CreateGenerator("pre-h")
	a := createAgentWith(t, e, "pre-a", g.ID, g.ID, systemGeneratorID)
	// Both are registered in the creating transaction (same registered_at).
	got, want := registeredGenerators(t, e, a), []string{systemGeneratorID, g.ID}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("registrations %v: want the system generator and g", got)
	}
	other := e.CreateAgent("pre-b", "c")

	wantErrorCode(t, e.Do("POST", v1+"/agents", e.AdminPAK, map[string]any{"name": "pre-x", "cluster_name": "c",
		"generator_ids": []string{h.ID, unknownID()}}), http.StatusBadRequest, "invalid_generator_id", "unknown generator id")
	e.Must(404, "GET", v1+"/agents/?name=pre-x&cluster_name=c", e.AdminPAK, nil)

	listed := func(p string) []string {
		var agents []map[string]any
		e.Must(200, "GET", v1+"/agents", p, nil).JSON(t, &agents)
		ids := []string{}
		for _, x := range agents {
			ids = append(ids, x["id"].(string))
		}
		return ids
	}
	if got := listed(e.AdminPAK); !slices.Contains(got, a.ID) || !slices.Contains(got, other.ID) {
		t.Fatalf("admin's GET /agents = %v", got)
	}
	if got := listed(g.PAK); !slices.Equal(got, []string{a.ID}) {
		t.Fatalf("generator g's GET /agents = %v, want only the agent registered with it", got)
	}
	if got := listed(h.PAK); len(got) != 0 {
		t.Fatalf("generator h's GET /agents = %v, want []", got)
	}
	wantErrorCode(t, e.Do("GET", v1+"/agents", a.PAK, nil), http.StatusForbidden, "generator_required", "agent lists agents")
	// A registration made later counts at once; a deregistration too.
	e.Must(201, "POST", v1+"/generators/"+h.ID+"/register", e.AdminPAK, map[string]string{"agent_id": other.ID})
	if got := listed(h.PAK); !slices.Equal(got, []string{other.ID}) {
		t.Fatalf("after registering: h's GET /agents = %v", got)
	}
	e.Must(204, "DELETE", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	if got := listed(g.PAK); len(got) != 0 {
		t.Fatalf("after deregistering: g's GET /agents = %v", got)
	}
}

// TestPakIDViewFilter: ?pak_id= on GET /stacks and GET /agent-events narrows
// the admin's listing to one tenant (0.9.1); unknown → [], malformed → 400.
func TestPakIDViewFilter(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("view-g")
	h := e.CreateGenerator("view-h")
	gStack := e.CreateStack(g.PAK, "view-g-stack")
	e.CreateStack(h.PAK, "view-h-stack")
	sysStack := e.CreateStack(e.AdminPAK, "view-sys-stack")
	obj, _ := e.Deploy(e.AdminPAK, sysStack, cmYAML("view"))
	a := createAgentWith(t, e, "view-a", g.ID)
	b := e.CreateAgent("view-b", "c")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": sysStack})
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": sysStack})
	for _, ag := range []apitest.Agent{a, b} {
		e.Must(201, "POST", v1+"/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
			"deployment_object_id": obj, "event_type": "DEPLOY", "status": "SUCCESS"})
	}

	ids := func(path, pak string) []string {
		var list []map[string]any
		e.Must(200, "GET", path, pak, nil).JSON(t, &list)
		out := []string{}
		for _, x := range list {
			out = append(out, x["id"].(string))
		}
		return out
	}
	if got := ids(v1+"/stacks?pak_id="+g.ID, e.AdminPAK); !slices.Equal(got, []string{gStack}) {
		t.Fatalf("stacks of g: %v", got)
	}
	if got := ids(v1+"/stacks?pak_id="+systemGeneratorID, e.AdminPAK); !slices.Equal(got, []string{sysStack}) {
		t.Fatalf("system stacks: %v", got)
	}
	if got := ids(v1+"/stacks?pak_id="+g.ID, h.PAK); len(got) != 0 {
		t.Fatalf("pak_id widened a generator's view: %v", got)
	}
	if got := ids(v1+"/stacks", e.AdminPAK); len(got) != 3 {
		t.Fatalf("unscoped stacks: %v", got)
	}
	var events []map[string]any
	e.Must(200, "GET", v1+"/agent-events?pak_id="+g.ID, e.AdminPAK, nil).JSON(t, &events)
	if len(events) != 1 || events[0]["agent_id"] != a.ID {
		t.Fatalf("events of agents registered with g: %v", events)
	}
	if got := ids(v1+"/agent-events", e.AdminPAK); len(got) != 2 {
		t.Fatalf("unscoped events: %v", got)
	}
	for _, path := range []string{"/stacks", "/agent-events"} {
		if got := ids(v1+path+"?pak_id="+unknownID(), e.AdminPAK); len(got) != 0 {
			t.Fatalf("%s with an unknown pak_id: %v", path, got)
		}
		wantErrorCode(t, e.Do("GET", v1+path+"?pak_id=nope", e.AdminPAK, nil), http.StatusBadRequest, "bad_request", path+" malformed pak_id")
	}
}

// createAgentWith creates an agent with POST /agents' generator_ids.
func createAgentWith(t *testing.T, e *apitest.Env, name string, generatorIDs ...string) apitest.Agent {
	t.Helper()
	var out struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	e.Must(201, "POST", v1+"/agents", e.AdminPAK, map[string]any{"name": name, "cluster_name": "c",
		"generator_ids": generatorIDs}).JSON(t, &out)
	return apitest.Agent{ID: out.Agent.ID, PAK: out.InitialPAK}
}
