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
	var out struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	e.Must(201, "POST", v1+"/agents", e.AdminPAK, map[string]any{"name": "pre-a", "cluster_name": "c",
		"generator_ids": []string{g.ID, g.ID, systemGeneratorID}}).JSON(t, &out)
	a := apitest.Agent{ID: out.Agent.ID, PAK: out.InitialPAK}
	if got := registeredGenerators(t, e, a); !slices.Equal(got, []string{systemGeneratorID, g.ID}) {
		t.Fatalf("registrations %v: want the system generator, then g", got)
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
