package httpapi_test

import (
	"net/url"
	"sort"
	"testing"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// TestRowScopingAgents: agent A can read and report for itself but can
// neither read nor change agent B.
func TestRowScopingAgents(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("scope-a", "c")
	b := e.CreateAgent("scope-b", "c")
	stB := e.CreateStack(e.AdminPAK, "b-only")
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stB})
	objB, _ := e.Deploy(e.AdminPAK, stB, cmYAML("b"))
	ack(e, b, objB, "FAILURE")

	pb := v1 + "/agents/" + b.ID
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", pb, nil},
		{"PUT", pb, map[string]string{"name": "hijacked"}},
		{"DELETE", pb, nil},
		{"GET", pb + "/events", nil},
		{"POST", pb + "/events", map[string]any{"deployment_object_id": objB, "event_type": "DEPLOY", "status": "SUCCESS"}},
		{"GET", pb + "/labels", nil},
		{"POST", pb + "/labels", `"stolen"`},
		{"GET", pb + "/annotations", nil},
		{"POST", pb + "/annotations", map[string]string{"key": "k", "value": "v"}},
		{"GET", pb + "/targets", nil},
		{"POST", pb + "/targets", map[string]string{"stack_id": stB}},
		{"DELETE", pb + "/targets/" + stB, nil},
		{"GET", pb + "/target-state", nil},
		{"GET", pb + "/stacks", nil},
		{"POST", pb + "/heartbeat", nil},
		{"POST", pb + "/rotate-pak", nil},
		{"GET", v1 + "/agents/?name=scope-b&cluster_name=c", nil},
		{"GET", v1 + "/deployment-objects/" + objB, nil},
		{"GET", v1 + "/stacks/" + stB + "/labels", nil},
		{"GET", v1 + "/stacks/" + stB + "/annotations", nil},
	} {
		wantError(t, e.Do(c.method, c.path, a.PAK, c.body), 403, "agent A: "+c.method+" "+c.path)
	}

	// B is untouched: same name, PAK still valid, target intact, its
	// target state still holds its object (A's SUCCESS was refused), no heartbeat.
	got := e.Must(200, "GET", pb, b.PAK, nil).Map(t)
	if got["name"] != "scope-b" || got["last_heartbeat"] != nil {
		t.Fatalf("agent B after A's attempts: %v", got)
	}
	wantObjects(t, targetState(e, b, ""), "B's target state", objB)
	var events []map[string]any
	e.Must(200, "GET", pb+"/events", b.PAK, nil).JSON(t, &events)
	if len(events) != 1 {
		t.Fatalf("B's events = %v, want only its own", events)
	}
	var labels []any
	e.Must(200, "GET", pb+"/labels", e.AdminPAK, nil).JSON(t, &labels)
	if len(labels) != 0 {
		t.Fatalf("B's labels = %v", labels)
	}
	// A still reads itself.
	e.Must(200, "GET", v1+"/agents/"+a.ID, a.PAK, nil)
	e.Must(200, "GET", v1+"/agents/?"+url.Values{"name": {"scope-a"}, "cluster_name": {"c"}}.Encode(), a.PAK, nil)
	// Neither agent may change its own associations or list agents
	// (docs/compatibility.md#agent-permissions).
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", v1 + "/agents/" + a.ID + "/labels", `"self"`},
		{"POST", v1 + "/agents/" + a.ID + "/annotations", map[string]string{"key": "k", "value": "v"}},
		{"POST", v1 + "/agents/" + a.ID + "/targets", map[string]string{"stack_id": stB}},
		{"GET", v1 + "/agents", nil},
		{"POST", v1 + "/agents", map[string]string{"name": "n", "cluster_name": "c"}},
		{"GET", v1 + "/stacks", nil},
		{"GET", v1 + "/stacks/" + stB, nil},
	} {
		wantError(t, e.Do(c.method, c.path, a.PAK, c.body), 403, "agent A on itself: "+c.method+" "+c.path)
	}
	wantObjects(t, targetState(e, a, ""), "A gained no association")
}

// TestRowScopingGeneratorStacks: generator G1 cannot read, update, delete or
// deploy to G2's stack, and lists only its own stacks.
func TestRowScopingGeneratorStacks(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g1 := e.CreateGenerator("g1")
	g2 := e.CreateGenerator("g2")
	own1 := e.CreateStack(g1.PAK, "g1-a")
	own2 := e.CreateStack(g1.PAK, "g1-b")
	theirs := e.CreateStack(g2.PAK, "g2-a")
	system := e.CreateStack(e.AdminPAK, "system")
	e.Must(201, "POST", v1+"/stacks/"+theirs+"/labels", g2.PAK, `"keep"`)
	e.Must(201, "POST", v1+"/stacks/"+theirs+"/annotations", g2.PAK, map[string]string{"key": "k", "value": "v"})
	theirObj, _ := e.Deploy(g2.PAK, theirs, cmYAML("theirs"))
	sysObj, _ := e.Deploy(e.AdminPAK, system, cmYAML("system"))

	for _, st := range []string{theirs, system} {
		ps := v1 + "/stacks/" + st
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", ps, nil},
			{"PUT", ps, map[string]string{"name": "hijacked"}},
			{"DELETE", ps, nil},
			{"GET", ps + "/labels", nil},
			{"POST", ps + "/labels", `"mine"`},
			{"DELETE", ps + "/labels/keep", nil},
			{"GET", ps + "/annotations", nil},
			{"POST", ps + "/annotations", map[string]string{"key": "x", "value": "y"}},
			{"DELETE", ps + "/annotations/k", nil},
			{"GET", ps + "/deployment-objects", nil},
			{"POST", ps + "/deployment-objects", map[string]string{"yaml_content": cmYAML("evil")}},
		} {
			wantError(t, e.Do(c.method, c.path, g1.PAK, c.body), 403, "G1: "+c.method+" "+c.path)
		}
	}
	for _, o := range []string{theirObj, sysObj} {
		wantError(t, e.Do("GET", v1+"/deployment-objects/"+o, g1.PAK, nil), 403, "G1 reading a foreign object")
	}
	// Nor may G1 manage G2 itself.
	for _, c := range []struct{ method, path string }{
		{"GET", v1 + "/generators/" + g2.ID},
		{"PUT", v1 + "/generators/" + g2.ID},
		{"DELETE", v1 + "/generators/" + g2.ID},
		{"POST", v1 + "/generators/" + g2.ID + "/rotate-pak"},
		{"GET", v1 + "/generators"},
	} {
		var body any
		if c.method == "PUT" {
			body = map[string]string{"name": "hijacked"}
		}
		wantError(t, e.Do(c.method, c.path, g1.PAK, body), 403, "G1: "+c.method+" "+c.path)
	}

	// G2's stack is unchanged: name, labels, annotations and one object.
	got := e.Must(200, "GET", v1+"/stacks/"+theirs, g2.PAK, nil).Map(t)
	if got["name"] != "g2-a" {
		t.Fatalf("G2's stack after G1's attempts: %v", got)
	}
	if l := ids(t, e.Must(200, "GET", v1+"/stacks/"+theirs+"/labels", g2.PAK, nil)); len(l) != 1 {
		t.Fatalf("G2's labels: %v", l)
	}
	if l := ids(t, e.Must(200, "GET", v1+"/stacks/"+theirs+"/annotations", g2.PAK, nil)); len(l) != 1 {
		t.Fatalf("G2's annotations: %v", l)
	}
	if l := ids(t, e.Must(200, "GET", v1+"/stacks/"+theirs+"/deployment-objects", g2.PAK, nil)); len(l) != 1 || l[0] != theirObj {
		t.Fatalf("G2's objects: %v", l)
	}
	e.Must(200, "GET", v1+"/generators/"+g2.ID, g2.PAK, nil)

	// GET /stacks: a generator sees exactly its own; the admin sees all.
	sorted := func(s []string) []string { sort.Strings(s); return s }
	want1 := sorted([]string{own1, own2})
	if got := sorted(ids(t, e.Must(200, "GET", v1+"/stacks", g1.PAK, nil))); len(got) != 2 || got[0] != want1[0] || got[1] != want1[1] {
		t.Fatalf("G1's GET /stacks = %v, want %v", got, want1)
	}
	if got := ids(t, e.Must(200, "GET", v1+"/stacks", g2.PAK, nil)); len(got) != 1 || got[0] != theirs {
		t.Fatalf("G2's GET /stacks = %v, want [%s]", got, theirs)
	}
	if got := ids(t, e.Must(200, "GET", v1+"/stacks", e.AdminPAK, nil)); len(got) != 4 {
		t.Fatalf("admin GET /stacks = %v, want 4", got)
	}
	// G1 still manages its own.
	e.Must(200, "PUT", v1+"/stacks/"+own1, g1.PAK, map[string]string{"description": "ok"})
	e.Deploy(g1.PAK, own1, cmYAML("ok"))
	e.Must(204, "DELETE", v1+"/stacks/"+own2, g1.PAK, nil)
	if got := ids(t, e.Must(200, "GET", v1+"/stacks", g1.PAK, nil)); len(got) != 1 || got[0] != own1 {
		t.Fatalf("G1's GET /stacks after deleting one = %v", got)
	}
}

// TestRowScopingAgentEvents: GET /agent-events shows an agent only its own
// events and a generator only events on its stacks' objects.
func TestRowScopingAgentEvents(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("ev-a", "c")
	b := e.CreateAgent("ev-b", "c")
	g1 := e.CreateGenerator("ev-g1")
	g2 := e.CreateGenerator("ev-g2")
	s1 := e.CreateStack(g1.PAK, "ev-s1")
	s2 := e.CreateStack(g2.PAK, "ev-s2")
	o1, _ := e.Deploy(g1.PAK, s1, cmYAML("o1"))
	o2, _ := e.Deploy(g2.PAK, s2, cmYAML("o2"))
	// Agents report only on objects of their stacks (issue 10 item 1).
	for _, ag := range []apitest.Agent{a, b} {
		for _, st := range []string{s1, s2} {
			e.Must(201, "POST", v1+"/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
		}
	}

	report := func(ag apitest.Agent, obj string) string {
		var ev struct {
			ID string `json:"id"`
		}
		e.Must(201, "POST", v1+"/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
			"deployment_object_id": obj, "event_type": "DEPLOY", "status": "SUCCESS"}).JSON(t, &ev)
		return ev.ID
	}
	aOn1 := report(a, o1)
	aOn2 := report(a, o2)
	bOn2 := report(b, o2)

	list := func(pak string) []string {
		got := ids(t, e.Must(200, "GET", v1+"/agent-events", pak, nil))
		sort.Strings(got)
		return got
	}
	same := func(got []string, want ...string) bool {
		sort.Strings(want)
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	for _, c := range []struct {
		name string
		pak  string
		want []string
	}{
		{"admin", e.AdminPAK, []string{aOn1, aOn2, bOn2}},
		{"agent A", a.PAK, []string{aOn1, aOn2}},
		{"agent B", b.PAK, []string{bOn2}},
		{"generator G1", g1.PAK, []string{aOn1}},
		{"generator G2", g2.PAK, []string{aOn2, bOn2}},
	} {
		if got := list(c.pak); !same(got, c.want...) {
			t.Errorf("GET /agent-events as %s = %v, want %v", c.name, got, c.want)
		}
	}

	// By id: the same scoping.
	for _, c := range []struct {
		name, pak, event string
		want             int
	}{
		{"A reads its own", a.PAK, aOn2, 200},
		{"A reads B's", a.PAK, bOn2, 403},
		{"B reads A's", b.PAK, aOn1, 403},
		{"G1 reads an event on its object", g1.PAK, aOn1, 200},
		{"G1 reads an event on G2's object", g1.PAK, bOn2, 403},
		{"G2 reads B's event on its object", g2.PAK, bOn2, 200},
		{"G2 reads an event on G1's object", g2.PAK, aOn1, 403},
	} {
		r := e.Do("GET", v1+"/agent-events/"+c.event, c.pak, nil)
		if r.Status != c.want {
			t.Errorf("%s: status %d, want %d; body %s", c.name, r.Status, c.want, r.Body)
		} else if c.want != 200 {
			errorMessage(t, r, c.name)
		}
	}
	// Per-agent lists are scoped too.
	wantError(t, e.Do("GET", v1+"/agents/"+b.ID+"/events", a.PAK, nil), 403, "A listing B's events")
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID+"/events", g1.PAK, nil), 403, "G1 listing A's events")
	// A deleted agent's events disappear from every list.
	e.Must(204, "DELETE", v1+"/agents/"+b.ID, e.AdminPAK, nil)
	if got := list(g2.PAK); !same(got, aOn2) {
		t.Errorf("G2's events after deleting B = %v, want [%s]", got, aOn2)
	}
	wantError(t, e.Do("GET", v1+"/agent-events/"+bOn2, e.AdminPAK, nil), 404, "event of a deleted agent")
}
