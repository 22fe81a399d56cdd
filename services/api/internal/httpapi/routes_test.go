package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

var agentFields = []string{"id", "created_at", "updated_at", "deleted_at", "name", "cluster_name", "last_heartbeat", "status"}
var generatorFields = []string{"id", "created_at", "updated_at", "deleted_at", "name", "description", "last_active_at", "is_active", "is_system"}

// stackFields: 0.9.1's fields plus depends_on (docs/compatibility.md#stack-dependencies).
var stackFields = []string{"id", "created_at", "updated_at", "deleted_at", "name", "description", "generator_id", "depends_on"}
var objectFields = []string{"id", "created_at", "updated_at", "deleted_at", "sequence_id", "stack_id", "yaml_content",
	"yaml_checksum", "submitted_at", "is_deletion_marker"}
var eventFields = []string{"id", "created_at", "updated_at", "deleted_at", "agent_id", "deployment_object_id",
	"event_type", "status", "message"}

// wantAgent checks the Agent JSON shape and returns it.
func wantAgent(t *testing.T, m map[string]any, ctx string) map[string]any {
	t.Helper()
	wantKeys(t, m, ctx, agentFields...)
	wantUUID(t, m["id"], ctx+" id")
	wantTimestamp(t, m["created_at"], ctx+" created_at")
	wantTimestamp(t, m["updated_at"], ctx+" updated_at")
	if m["deleted_at"] != nil {
		t.Errorf("%s: deleted_at = %v, want null", ctx, m["deleted_at"])
	}
	return m
}

func TestAgentsCreateShapeAndPAK(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	r := e.Must(201, "POST", v1+"/agents", e.AdminPAK, map[string]string{"name": "shape", "cluster_name": "prod"})
	body := r.Map(t)
	wantKeys(t, body, "create agent", "agent", "initial_pak", "pak")
	a := wantAgent(t, body["agent"].(map[string]any), "created agent")
	if a["status"] != "ACTIVE" || a["name"] != "shape" || a["cluster_name"] != "prod" || a["last_heartbeat"] != nil {
		t.Fatalf("created agent = %v, want ACTIVE shape/prod without heartbeat", a)
	}
	initial, _ := body["initial_pak"].(string)
	if !pakPattern.MatchString(initial) || body["pak"] != initial {
		t.Fatalf("initial_pak %q / pak %v: want one PAK matching %s", initial, body["pak"], pakPattern)
	}
	if strings.Contains(string(r.Body), "pak_hash") {
		t.Fatalf("response leaks pak_hash: %s", r.Body)
	}
	id := a["id"].(string)

	// The PAK authenticates as this agent.
	var who struct {
		Admin     bool    `json:"admin"`
		Agent     *string `json:"agent"`
		Generator *string `json:"generator"`
	}
	e.Must(200, "POST", v1+"/auth/pak", initial, nil).JSON(t, &who)
	if who.Admin || who.Agent == nil || *who.Agent != id || who.Generator != nil {
		t.Fatalf("auth/pak = %+v, want agent %s", who, id)
	}

	// GET by id and the admin's list return the same shape.
	got := wantAgent(t, e.Must(200, "GET", v1+"/agents/"+id, initial, nil).Map(t), "GET agent")
	if got["id"] != id || got["status"] != "ACTIVE" {
		t.Fatalf("GET agent = %v", got)
	}
	var list []map[string]any
	e.Must(200, "GET", v1+"/agents", e.AdminPAK, nil).JSON(t, &list)
	if len(list) != 1 || list[0]["id"] != id {
		t.Fatalf("GET /agents = %v, want only %s", list, id)
	}
	wantAgent(t, list[0], "listed agent")
}

func TestAgentsConflictsAndValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("dup", "c1")
	r := e.Do("POST", v1+"/agents", e.AdminPAK, map[string]string{"name": "dup", "cluster_name": "c1"})
	wantError(t, r, http.StatusConflict, "duplicate (name, cluster_name)")
	// The same name in another cluster is a different agent.
	e.CreateAgent("dup", "c2")
	// Blank names are client errors.
	wantError(t, e.Do("POST", v1+"/agents", e.AdminPAK, map[string]string{"name": " ", "cluster_name": "c"}), 400, "blank name")
	wantError(t, e.Do("POST", v1+"/agents", e.AdminPAK, map[string]string{"name": "x"}), 400, "missing cluster_name")
	wantError(t, e.Do("POST", v1+"/agents", e.AdminPAK, map[string]string{"name": strings.Repeat("n", 256), "cluster_name": "c"}), 400, "name too long")
	// After deletion the (name, cluster_name) pair is free again.
	e.Must(204, "DELETE", v1+"/agents/"+a.ID, e.AdminPAK, nil)
	e.CreateAgent("dup", "c1")
}

func TestAgentsUpdatePartial(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("upd", "c1")
	e.CreateAgent("other", "c1")

	var got map[string]any
	got = e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"name": "renamed"}).Map(t)
	if got["name"] != "renamed" || got["cluster_name"] != "c1" || got["status"] != "ACTIVE" {
		t.Fatalf("partial PUT name: %v", got)
	}
	got = e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"status": "INACTIVE"}).Map(t)
	if got["name"] != "renamed" || got["status"] != "INACTIVE" {
		t.Fatalf("partial PUT status: %v", got)
	}
	// A full object, as the original's clients send, is accepted too.
	got["status"] = "ACTIVE"
	got = e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, got).Map(t)
	if got["status"] != "ACTIVE" {
		t.Fatalf("full-object PUT: %v", got)
	}
	wantError(t, e.Do("PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"status": "SLEEPY"}), 400, "unknown status")
	wantError(t, e.Do("PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"name": "other"}), 409, "rename onto another agent")
	wantError(t, e.Do("PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]any{"name": 7}), 422, "wrong JSON type")
	// An agent may not change its own status
	// (docs/compatibility.md#agent-permissions).
	wantError(t, e.Do("PUT", v1+"/agents/"+a.ID, a.PAK, map[string]string{"status": "INACTIVE"}), 403, "agent sets own status")
	got = e.Must(200, "GET", v1+"/agents/"+a.ID, e.AdminPAK, nil).Map(t)
	if got["status"] != "ACTIVE" {
		t.Fatalf("status after the agent's forbidden PUT: %v", got["status"])
	}
}

func TestAgentsDelete(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("gone", "c")
	e.Must(200, "POST", v1+"/auth/pak", a.PAK, nil)
	r := e.Must(204, "DELETE", v1+"/agents/"+a.ID, e.AdminPAK, nil)
	if len(r.Body) != 0 {
		t.Fatalf("204 with body %q", r.Body)
	}
	wantErrorMsg(t, e.Do("DELETE", v1+"/agents/"+a.ID, e.AdminPAK, nil), 404, "Agent not found", "repeated delete")
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID, e.AdminPAK, nil), 404, "GET deleted agent")
	// Its PAK stops working at once.
	wantError(t, e.Do("POST", v1+"/auth/pak", a.PAK, nil), 401, "deleted agent's PAK")
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID+"/target-state", a.PAK, nil), 401, "deleted agent's target state")
	var list []map[string]any
	e.Must(200, "GET", v1+"/agents", e.AdminPAK, nil).JSON(t, &list)
	if len(list) != 0 {
		t.Fatalf("deleted agent still listed: %v", list)
	}
}

func TestAgentsPAKRotationAndBareHeader(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("rot", "c")

	// A bare PAK (no "Bearer ") is accepted
	// (docs/compatibility.md#authorization-header).
	r := e.Do("POST", v1+"/auth/pak", "", nil, bare(a.PAK)...)
	if r.Status != 200 || r.Map(t)["agent"] != a.ID {
		t.Fatalf("bare PAK: %d %s", r.Status, r.Body)
	}
	r = e.Do("GET", v1+"/agents", "", nil, bare(e.AdminPAK)...)
	if r.Status != 200 {
		t.Fatalf("bare admin PAK: %d %s", r.Status, r.Body)
	}

	// The agent rotates its own PAK: the old one fails right away.
	body := e.Must(200, "POST", v1+"/agents/"+a.ID+"/rotate-pak", a.PAK, nil).Map(t)
	wantKeys(t, body, "rotate", "agent", "pak")
	wantAgent(t, body["agent"].(map[string]any), "rotated agent")
	newPAK, _ := body["pak"].(string)
	if !pakPattern.MatchString(newPAK) || newPAK == a.PAK {
		t.Fatalf("rotated PAK %q", newPAK)
	}
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID, a.PAK, nil), 401, "old PAK after rotation")
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID, "", nil, bare(a.PAK)...), 401, "old bare PAK after rotation")
	e.Must(200, "GET", v1+"/agents/"+a.ID, newPAK, nil)

	// The admin rotates it again.
	body = e.Must(200, "POST", v1+"/agents/"+a.ID+"/rotate-pak", e.AdminPAK, nil).Map(t)
	third, _ := body["pak"].(string)
	wantError(t, e.Do("GET", v1+"/agents/"+a.ID, newPAK, nil), 401, "second PAK after admin rotation")
	e.Must(200, "GET", v1+"/agents/"+a.ID, third, nil)
	wantError(t, e.Do("POST", v1+"/agents/"+uuid.NewString()+"/rotate-pak", e.AdminPAK, nil), 404, "rotate unknown agent")
}

func TestAgentsSearch(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("finder", "east")
	b := e.CreateAgent("other", "east")
	g := e.CreateGenerator("search-gen")
	q := func(name, cluster string) string {
		v := url.Values{}
		if name != "" {
			v.Set("name", name)
		}
		if cluster != "" {
			v.Set("cluster_name", cluster)
		}
		return v1 + "/agents/?" + v.Encode()
	}
	for _, p := range []string{q("", ""), q("finder", ""), q("", "east")} {
		wantError(t, e.Do("GET", p, e.AdminPAK, nil), 400, "search "+p)
		wantError(t, e.Do("GET", p, a.PAK, nil), 400, "agent search "+p)
	}
	wantErrorMsg(t, e.Do("GET", q("nobody", "east"), e.AdminPAK, nil), 404, "Agent not found", "unknown agent")
	wantError(t, e.Do("GET", q("finder", "west"), e.AdminPAK, nil), 404, "wrong cluster")
	for _, pak := range []string{e.AdminPAK, a.PAK} {
		got := wantAgent(t, e.Must(200, "GET", q("finder", "east"), pak, nil).Map(t), "search")
		if got["id"] != a.ID {
			t.Fatalf("search found %v, want %s", got["id"], a.ID)
		}
	}
	wantError(t, e.Do("GET", q("finder", "east"), b.PAK, nil), 403, "another agent searching")
	wantError(t, e.Do("GET", q("finder", "east"), g.PAK, nil), 403, "generator searching")
	// Role before validation (docs/compatibility.md#check-order): a
	// generator may never search.
	wantError(t, e.Do("GET", q("", ""), g.PAK, nil), 403, "generator searching without parameters")
}

func TestAgentsHeartbeat(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("beat", "c")
	before := time.Now().Add(-time.Minute)
	got := wantAgent(t, e.Must(200, "POST", v1+"/agents/"+a.ID+"/heartbeat", a.PAK, nil).Map(t), "heartbeat")
	hb := wantTimestamp(t, got["last_heartbeat"], "last_heartbeat")
	if hb.Before(before) || got["id"] != a.ID || got["status"] != "ACTIVE" {
		t.Fatalf("heartbeat returned %v", got)
	}
	got = e.Must(200, "GET", v1+"/agents/"+a.ID, e.AdminPAK, nil).Map(t)
	if got["last_heartbeat"] == nil {
		t.Fatal("heartbeat not stored")
	}
	// The agent learns its status from the heartbeat answer.
	e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"status": "INACTIVE"})
	got = e.Must(200, "POST", v1+"/agents/"+a.ID+"/heartbeat", a.PAK, nil).Map(t)
	if got["status"] != "INACTIVE" {
		t.Fatalf("heartbeat status = %v, want INACTIVE", got["status"])
	}
	wantErrorMsg(t, e.Do("POST", v1+"/agents/"+a.ID+"/heartbeat", e.AdminPAK, nil), 403, "Unauthorized", "admin heartbeat")
}

func TestAgentLabels(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("labelled", "c")
	p := v1 + "/agents/" + a.ID + "/labels"

	// Bare string, {"label"} and {"agent_id", "label"} are all accepted.
	l := e.Must(201, "POST", p, e.AdminPAK, `"env:prod"`).Map(t)
	wantKeys(t, l, "label", "id", "agent_id", "label")
	if l["agent_id"] != a.ID || l["label"] != "env:prod" {
		t.Fatalf("label = %v", l)
	}
	e.Must(201, "POST", p, e.AdminPAK, map[string]string{"label": "tier-1"})
	e.Must(201, "POST", p, e.AdminPAK, map[string]string{"agent_id": a.ID, "label": "zone-a"})
	e.Must(201, "POST", p, e.AdminPAK, `"`+strings.Repeat("x", 64)+`"`)

	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"agent_id": uuid.NewString(), "label": "x"}), 400, "agent_id mismatch")
	wantError(t, e.Do("POST", p, e.AdminPAK, `"env:prod"`), 409, "duplicate label")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, `""`), 400, "Label cannot be empty", "empty label")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, `"   "`), 400, "Label cannot be empty", "blank label")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, `"a b"`), 400, "Label cannot contain whitespace", "label with a space")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, map[string]string{"label": "a\tb"}), 400, "Label cannot contain whitespace", "label with a tab")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, `"`+strings.Repeat("x", 65)+`"`), 400, "Label cannot exceed 64 characters", "65-char label")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]int{"label": 5}), 422, "non-string label")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"name": "x"}), 422, "object without label")
	wantError(t, e.Do("POST", p, e.AdminPAK, `42`), 422, "number body")

	var labels []struct {
		Label string `json:"label"`
	}
	e.Must(200, "GET", p, a.PAK, nil).JSON(t, &labels)
	if len(labels) != 4 {
		t.Fatalf("labels = %+v, want 4", labels)
	}
	e.Must(204, "DELETE", p+"/env:prod", e.AdminPAK, nil)
	wantErrorMsg(t, e.Do("DELETE", p+"/env:prod", e.AdminPAK, nil), 404, "Label not found", "repeated label delete")
	e.Must(200, "GET", p, e.AdminPAK, nil).JSON(t, &labels)
	if len(labels) != 3 {
		t.Fatalf("labels after delete = %+v", labels)
	}
}

func TestAgentAnnotations(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("annotated", "c")
	p := v1 + "/agents/" + a.ID + "/annotations"
	an := e.Must(201, "POST", p, e.AdminPAK, map[string]string{"key": "region", "value": "eu"}).Map(t)
	wantKeys(t, an, "annotation", "id", "agent_id", "key", "value")
	if an["agent_id"] != a.ID || an["key"] != "region" || an["value"] != "eu" {
		t.Fatalf("annotation = %v", an)
	}
	e.Must(201, "POST", p, e.AdminPAK, map[string]string{"agent_id": a.ID, "key": "tier", "value": "1"})
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"agent_id": uuid.NewString(), "key": "k", "value": "v"}), 400, "agent_id mismatch")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"key": "region", "value": "us"}), 409, "duplicate key")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, map[string]string{"key": "", "value": "v"}), 400, "Annotation key cannot be empty", "empty key")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, map[string]string{"key": "k", "value": "a b"}), 400, "Annotation value cannot contain whitespace", "value with space")
	wantErrorMsg(t, e.Do("POST", p, e.AdminPAK, map[string]string{"key": strings.Repeat("k", 65), "value": "v"}), 400, "Annotation key cannot exceed 64 characters", "long key")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]any{"key": "k", "value": 1}), 422, "non-string value")

	var list []map[string]any
	e.Must(200, "GET", p, a.PAK, nil).JSON(t, &list)
	if len(list) != 2 {
		t.Fatalf("annotations = %v", list)
	}
	e.Must(204, "DELETE", p+"/region", e.AdminPAK, nil)
	wantErrorMsg(t, e.Do("DELETE", p+"/region", e.AdminPAK, nil), 404, "Annotation not found", "repeated delete")
}

func TestAgentTargets(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("targeting", "c")
	s1 := e.CreateStack(e.AdminPAK, "t1")
	s2 := e.CreateStack(e.AdminPAK, "t2")
	p := v1 + "/agents/" + a.ID + "/targets"

	// {"stack_id"} alone, and with a matching agent_id.
	tg := e.Must(201, "POST", p, e.AdminPAK, map[string]string{"stack_id": s1}).Map(t)
	wantKeys(t, tg, "target", "id", "agent_id", "stack_id")
	if tg["agent_id"] != a.ID || tg["stack_id"] != s1 {
		t.Fatalf("target = %v", tg)
	}
	e.Must(201, "POST", p, e.AdminPAK, map[string]string{"agent_id": a.ID, "stack_id": s2})
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"stack_id": s1}), 409, "duplicate target")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"stack_id": uuid.NewString()}), 422, "unknown stack")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"agent_id": uuid.NewString(), "stack_id": s1}), 400, "agent_id mismatch")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{}), 400, "missing stack_id")
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"stack_id": "nope"}), 422, "non-UUID stack_id")
	// A deleted stack cannot be targeted.
	s3 := e.CreateStack(e.AdminPAK, "t3")
	e.Must(204, "DELETE", v1+"/stacks/"+s3, e.AdminPAK, nil)
	wantError(t, e.Do("POST", p, e.AdminPAK, map[string]string{"stack_id": s3}), 422, "deleted stack")

	var list []map[string]any
	e.Must(200, "GET", p, a.PAK, nil).JSON(t, &list)
	if len(list) != 2 {
		t.Fatalf("targets = %v", list)
	}
	var stacks []map[string]any
	e.Must(200, "GET", v1+"/agents/"+a.ID+"/stacks", a.PAK, nil).JSON(t, &stacks)
	if len(stacks) != 2 {
		t.Fatalf("associated stacks = %v", stacks)
	}
	wantKeys(t, stacks[0], "associated stack", stackFields...)

	e.Must(204, "DELETE", p+"/"+s1, e.AdminPAK, nil)
	wantErrorMsg(t, e.Do("DELETE", p+"/"+s1, e.AdminPAK, nil), 404, "Target not found", "repeated target delete")
	e.Must(200, "GET", p, e.AdminPAK, nil).JSON(t, &list)
	if len(list) != 1 || list[0]["stack_id"] != s2 {
		t.Fatalf("targets after delete = %v", list)
	}
}

func TestAgentEvents(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("reporter", "c")
	st := e.CreateStack(e.AdminPAK, "ev")
	obj, _ := e.Deploy(e.AdminPAK, st, cmYAML("ev"))
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
	p := v1 + "/agents/" + a.ID + "/events"

	ev := e.Must(201, "POST", p, a.PAK, map[string]any{
		"agent_id": a.ID, "deployment_object_id": obj, "event_type": "DEPLOY", "status": "FAILURE", "message": "boom"}).Map(t)
	wantKeys(t, ev, "event", eventFields...)
	wantTimestamp(t, ev["created_at"], "event created_at")
	if ev["agent_id"] != a.ID || ev["deployment_object_id"] != obj || ev["status"] != "FAILURE" || ev["message"] != "boom" {
		t.Fatalf("event = %v", ev)
	}
	// A lenient status spelling is normalised, message may be omitted (null).
	ev2 := e.Must(201, "POST", p, a.PAK, map[string]any{"deployment_object_id": obj, "event_type": "DEPLOY", "status": "success"}).Map(t)
	if ev2["status"] != "SUCCESS" || ev2["message"] != nil {
		t.Fatalf("second event = %v", ev2)
	}
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"deployment_object_id": uuid.NewString(), "event_type": "DEPLOY", "status": "SUCCESS"}),
		422, "event for an unknown deployment object")
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"agent_id": uuid.NewString(), "deployment_object_id": obj, "event_type": "DEPLOY", "status": "SUCCESS"}),
		400, "agent_id mismatch")
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"event_type": "DEPLOY", "status": "SUCCESS"}), 400, "missing deployment_object_id")
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"deployment_object_id": obj, "status": "SUCCESS"}), 400, "missing event_type")
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"deployment_object_id": obj, "event_type": "DEPLOY", "status": "WAY-TOO-LONG-STATUS"}), 400, "status too long")
	wantError(t, e.Do("POST", p, a.PAK, map[string]any{"deployment_object_id": obj, "event_type": "DEPLOY", "status": 1}), 422, "non-string status")

	var list []map[string]any
	e.Must(200, "GET", p, a.PAK, nil).JSON(t, &list)
	if len(list) != 2 || list[0]["id"] != ev2["id"] || list[1]["id"] != ev["id"] {
		t.Fatalf("events = %v, want newest first", list)
	}
	got := e.Must(200, "GET", v1+"/agent-events/"+ev["id"].(string), a.PAK, nil).Map(t)
	wantKeys(t, got, "GET event", eventFields...)
	if got["id"] != ev["id"] {
		t.Fatalf("GET event = %v", got)
	}
	wantErrorMsg(t, e.Do("GET", v1+"/agent-events/"+uuid.NewString(), e.AdminPAK, nil), 404, "Agent event not found", "unknown event")
}

func TestGenerators(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	body := e.Must(201, "POST", v1+"/generators", e.AdminPAK, map[string]string{"name": "ci", "description": "pipeline"}).Map(t)
	wantKeys(t, body, "create generator", "generator", "pak")
	g := body["generator"].(map[string]any)
	wantKeys(t, g, "generator", generatorFields...)
	wantUUID(t, g["id"], "generator id")
	wantTimestamp(t, g["created_at"], "generator created_at")
	if g["name"] != "ci" || g["description"] != "pipeline" || g["is_active"] != true || g["deleted_at"] != nil || g["last_active_at"] != nil {
		t.Fatalf("generator = %v", g)
	}
	id := g["id"].(string)
	gpak, _ := body["pak"].(string)
	if !pakPattern.MatchString(gpak) {
		t.Fatalf("generator PAK %q", gpak)
	}
	who := e.Must(200, "POST", v1+"/auth/pak", gpak, nil).Map(t)
	if who["admin"] != false || who["generator"] != id || who["agent"] != nil {
		t.Fatalf("auth/pak as generator = %v", who)
	}

	// 0.9.1's stable code for a duplicate (docs/error-codes.md).
	wantErrorCode(t, e.Do("POST", v1+"/generators", e.AdminPAK, map[string]string{"name": "ci"}), 409, "unique_violation", "duplicate generator name")
	wantError(t, e.Do("POST", v1+"/generators", e.AdminPAK, map[string]string{"name": ""}), 400, "empty generator name")
	wantError(t, e.Do("POST", v1+"/generators", e.AdminPAK, map[string]any{"name": []int{1}}), 422, "wrong type")

	// PUT is partial; an explicit null clears the description.
	got := e.Must(200, "PUT", v1+"/generators/"+id, gpak, map[string]any{"is_active": false}).Map(t)
	if got["name"] != "ci" || got["description"] != "pipeline" || got["is_active"] != false {
		t.Fatalf("partial PUT: %v", got)
	}
	got = e.Must(200, "PUT", v1+"/generators/"+id, e.AdminPAK, map[string]any{"description": nil}).Map(t)
	if _, present := got["description"]; !present || got["description"] != nil || got["name"] != "ci" {
		t.Fatalf("description null: %v", got)
	}
	// Deactivated, the generator's PAK no longer authenticates (issue 10
	// item 6) until the admin reactivates it.
	wantError(t, e.Do("GET", v1+"/generators/"+id, gpak, nil), 401, "deactivated generator")
	e.Must(200, "PUT", v1+"/generators/"+id, e.AdminPAK, map[string]any{"is_active": true})
	got = e.Must(200, "GET", v1+"/generators/"+id, gpak, nil).Map(t)
	if got["description"] != nil {
		t.Fatalf("description not cleared: %v", got)
	}
	e.CreateGenerator("other")
	wantError(t, e.Do("PUT", v1+"/generators/"+id, e.AdminPAK, map[string]string{"name": "other"}), 409, "rename onto another generator")

	// The list holds both generators (and the bootstrap admin-generator).
	listed := ids(t, e.Must(200, "GET", v1+"/generators", e.AdminPAK, nil))
	if !contains(listed, id) || len(listed) != 3 {
		t.Fatalf("generators = %v, want ci, other and admin-generator", listed)
	}

	// Rotation: the old PAK fails at once, the new one works.
	rot := e.Must(201, "POST", v1+"/generators/"+id+"/rotate-pak", gpak, nil).Map(t)
	wantKeys(t, rot, "rotate", "generator", "pak")
	newPAK, _ := rot["pak"].(string)
	if !pakPattern.MatchString(newPAK) || newPAK == gpak {
		t.Fatalf("rotated PAK %q", newPAK)
	}
	wantError(t, e.Do("GET", v1+"/generators/"+id, gpak, nil), 401, "old generator PAK")
	e.Must(200, "GET", v1+"/generators/"+id, newPAK, nil)

	// Delete: 204, then 404; the PAK stops working.
	e.Must(204, "DELETE", v1+"/generators/"+id, e.AdminPAK, nil)
	wantErrorMsg(t, e.Do("DELETE", v1+"/generators/"+id, e.AdminPAK, nil), 404, "Generator not found", "repeated generator delete")
	wantError(t, e.Do("GET", v1+"/generators/"+id, e.AdminPAK, nil), 404, "GET deleted generator")
	wantError(t, e.Do("POST", v1+"/auth/pak", newPAK, nil), 401, "deleted generator's PAK")
	// The name is free again.
	e.CreateGenerator("ci")
}

func TestStacks(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("stack-owner")

	// Admin: a system stack, answering the system generator's id in
	// generator_id (never null); the nil UUID means the same
	// (docs/compatibility.md#system-stacks).
	sys := e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": "system", "description": "d"}).Map(t)
	wantKeys(t, sys, "stack", stackFields...)
	wantUUID(t, sys["id"], "stack id")
	wantTimestamp(t, sys["created_at"], "stack created_at")
	if sys["generator_id"] != systemGeneratorID || sys["description"] != "d" {
		t.Fatalf("system stack = %v", sys)
	}
	nilGen := e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": "system2", "generator_id": uuid.Nil.String()}).Map(t)
	if nilGen["generator_id"] != systemGeneratorID || nilGen["description"] != nil {
		t.Fatalf("nil-UUID stack = %v", nilGen)
	}
	// Admin on behalf of a generator; a generator for itself.
	forG := e.Must(201, "POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": "for-g", "generator_id": g.ID}).Map(t)
	own := e.Must(201, "POST", v1+"/stacks", g.PAK, map[string]any{"name": "own"}).Map(t)
	if forG["generator_id"] != g.ID || own["generator_id"] != g.ID {
		t.Fatalf("generator stacks: %v / %v", forG, own)
	}
	e.Must(201, "POST", v1+"/stacks", g.PAK, map[string]any{"name": "own-explicit", "generator_id": g.ID})
	wantError(t, e.Do("POST", v1+"/stacks", g.PAK, map[string]any{"name": "theirs", "generator_id": uuid.NewString()}), 403, "generator creating for another")
	wantError(t, e.Do("POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": "orphan", "generator_id": uuid.NewString()}), 422, "unknown generator_id")
	wantError(t, e.Do("POST", v1+"/stacks", e.AdminPAK, map[string]any{"name": "own"}), 409, "duplicate stack name")
	wantError(t, e.Do("POST", v1+"/stacks", g.PAK, map[string]any{"name": ""}), 400, "empty stack name")
	wantError(t, e.Do("POST", v1+"/stacks", g.PAK, map[string]any{"name": "x", "generator_id": 5}), 422, "wrong type")

	id := own["id"].(string)
	// PUT is partial; description null clears; id mismatch is 400.
	got := e.Must(200, "PUT", v1+"/stacks/"+id, g.PAK, map[string]any{"description": "v1"}).Map(t)
	if got["name"] != "own" || got["description"] != "v1" {
		t.Fatalf("PUT description: %v", got)
	}
	got = e.Must(200, "PUT", v1+"/stacks/"+id, g.PAK, map[string]any{"id": id, "name": "renamed"}).Map(t)
	if got["name"] != "renamed" || got["description"] != "v1" {
		t.Fatalf("PUT name: %v", got)
	}
	got = e.Must(200, "PUT", v1+"/stacks/"+id, g.PAK, map[string]any{"description": nil}).Map(t)
	if got["description"] != nil || got["name"] != "renamed" {
		t.Fatalf("PUT description null: %v", got)
	}
	wantErrorMsg(t, e.Do("PUT", v1+"/stacks/"+id, g.PAK, map[string]any{"id": uuid.NewString()}), 400, "Stack ID mismatch", "PUT id mismatch")
	wantError(t, e.Do("PUT", v1+"/stacks/"+id, g.PAK, map[string]any{"name": "system"}), 409, "rename onto another stack")
	got = e.Must(200, "GET", v1+"/stacks/"+id, g.PAK, nil).Map(t)
	if got["name"] != "renamed" || got["description"] != nil {
		t.Fatalf("GET after PUTs: %v", got)
	}

	// Delete: 204, then 404 everywhere; the name is reusable.
	e.Must(204, "DELETE", v1+"/stacks/"+id, g.PAK, nil)
	wantErrorMsg(t, e.Do("DELETE", v1+"/stacks/"+id, g.PAK, nil), 404, "Stack not found", "repeated stack delete")
	wantError(t, e.Do("GET", v1+"/stacks/"+id, e.AdminPAK, nil), 404, "GET deleted stack")
	wantError(t, e.Do("POST", v1+"/stacks/"+id+"/deployment-objects", e.AdminPAK, map[string]string{"yaml_content": cmYAML("x")}), 404, "deploy to deleted stack")
	e.Must(201, "POST", v1+"/stacks", g.PAK, map[string]any{"name": "renamed"})

	var list []map[string]any
	e.Must(200, "GET", v1+"/stacks", e.AdminPAK, nil).JSON(t, &list)
	if len(list) != 5 {
		t.Fatalf("admin GET /stacks = %d stacks, want 5: %v", len(list), list)
	}
}

func TestStackLabelsAndAnnotations(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("labeller")
	st := e.CreateStack(g.PAK, "labelled")
	p := v1 + "/stacks/" + st

	l := e.Must(201, "POST", p+"/labels", g.PAK, `"app:web"`).Map(t)
	wantKeys(t, l, "stack label", "id", "stack_id", "label")
	if l["stack_id"] != st || l["label"] != "app:web" {
		t.Fatalf("stack label = %v", l)
	}
	e.Must(201, "POST", p+"/labels", g.PAK, map[string]string{"label": "tier-1"})
	e.Must(201, "POST", p+"/labels", g.PAK, map[string]string{"stack_id": st, "label": "zone-a"})
	wantError(t, e.Do("POST", p+"/labels", g.PAK, map[string]string{"stack_id": uuid.NewString(), "label": "x"}), 400, "stack_id mismatch")
	wantError(t, e.Do("POST", p+"/labels", g.PAK, `"app:web"`), 409, "duplicate stack label")
	wantErrorMsg(t, e.Do("POST", p+"/labels", g.PAK, `""`), 400, "Label cannot be empty", "empty")
	wantErrorMsg(t, e.Do("POST", p+"/labels", g.PAK, `"a b"`), 400, "Label cannot contain whitespace", "whitespace")
	wantErrorMsg(t, e.Do("POST", p+"/labels", g.PAK, `"`+strings.Repeat("y", 65)+`"`), 400, "Label cannot exceed 64 characters", "too long")
	var labels []map[string]any
	e.Must(200, "GET", p+"/labels", g.PAK, nil).JSON(t, &labels)
	if len(labels) != 3 {
		t.Fatalf("stack labels = %v", labels)
	}
	e.Must(204, "DELETE", p+"/labels/app:web", g.PAK, nil)
	wantErrorMsg(t, e.Do("DELETE", p+"/labels/app:web", g.PAK, nil), 404, "Label not found", "repeated delete")

	// Annotations: stack_id optional; keys may repeat; DELETE removes all of a key.
	an := e.Must(201, "POST", p+"/annotations", g.PAK, map[string]string{"key": "tier", "value": "1"}).Map(t)
	wantKeys(t, an, "stack annotation", "id", "stack_id", "key", "value")
	if an["stack_id"] != st {
		t.Fatalf("stack annotation = %v", an)
	}
	e.Must(201, "POST", p+"/annotations", g.PAK, map[string]string{"stack_id": st, "key": "tier", "value": "2"})
	wantErrorMsg(t, e.Do("POST", p+"/annotations", g.PAK, map[string]string{"stack_id": uuid.NewString(), "key": "k", "value": "v"}), 400, "Stack ID mismatch", "stack_id mismatch")
	wantErrorMsg(t, e.Do("POST", p+"/annotations", g.PAK, map[string]string{"key": "k", "value": ""}), 400, "Annotation value cannot be empty", "empty value")
	var anns []map[string]any
	e.Must(200, "GET", p+"/annotations", e.AdminPAK, nil).JSON(t, &anns)
	if len(anns) != 2 {
		t.Fatalf("stack annotations = %v", anns)
	}
	e.Must(204, "DELETE", p+"/annotations/tier", g.PAK, nil)
	e.Must(200, "GET", p+"/annotations", e.AdminPAK, nil).JSON(t, &anns)
	if len(anns) != 0 {
		t.Fatalf("annotations after delete = %v", anns)
	}
	wantErrorMsg(t, e.Do("DELETE", p+"/annotations/tier", g.PAK, nil), 404, "Annotation not found", "repeated delete")
}

func TestDeploymentObjects(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g := e.CreateGenerator("deployer")
	st := e.CreateStack(g.PAK, "objects")
	p := v1 + "/stacks/" + st + "/deployment-objects"

	y1 := cmYAML("one")
	d1 := e.Must(201, "POST", p, g.PAK, map[string]any{"yaml_content": y1}).Map(t)
	wantKeys(t, d1, "deployment object", objectFields...)
	sum := sha256.Sum256([]byte(y1))
	if d1["yaml_checksum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("checksum %v, want sha256 hex %x", d1["yaml_checksum"], sum)
	}
	if d1["stack_id"] != st || d1["yaml_content"] != y1 || d1["is_deletion_marker"] != false || d1["deleted_at"] != nil {
		t.Fatalf("deployment object = %v", d1)
	}
	wantTimestamp(t, d1["submitted_at"], "submitted_at")
	if seq, ok := d1["sequence_id"].(float64); !ok || seq < 1 {
		t.Fatalf("sequence_id = %v", d1["sequence_id"])
	}
	// A multi-document YAML is fine; an explicit marker flag is kept.
	d2 := e.Must(201, "POST", p, g.PAK, map[string]any{"yaml_content": y1 + "---\n" + cmYAML("two"), "is_deletion_marker": true}).Map(t)
	if d2["is_deletion_marker"] != true || d2["sequence_id"].(float64) <= d1["sequence_id"].(float64) {
		t.Fatalf("second object = %v", d2)
	}
	// A non-boolean marker flag counts as false (the original's rule).
	d3 := e.Must(201, "POST", p, g.PAK, map[string]any{"yaml_content": cmYAML("three"), "is_deletion_marker": "yes"}).Map(t)
	if d3["is_deletion_marker"] != false {
		t.Fatalf("string marker flag: %v", d3)
	}

	wantErrorMsg(t, e.Do("POST", p, g.PAK, map[string]any{"yaml_content": ""}), 400, "YAML content cannot be empty", "empty yaml")
	wantErrorMsg(t, e.Do("POST", p, g.PAK, map[string]any{"yaml_content": "  \n\t"}), 400, "YAML content cannot be empty", "blank yaml")
	wantError(t, e.Do("POST", p, g.PAK, map[string]any{"yaml_content": "kind: [unclosed\n  - : :"}), 400, "invalid yaml")
	wantErrorMsg(t, e.Do("POST", p, g.PAK, map[string]any{}), 400, "Missing or invalid yaml_content", "missing yaml_content")
	wantError(t, e.Do("POST", p, g.PAK, map[string]any{"yaml_content": 12}), 422, "non-string yaml_content")
	wantError(t, e.Do("POST", v1+"/stacks/"+uuid.NewString()+"/deployment-objects", e.AdminPAK, map[string]any{"yaml_content": y1}), 404, "unknown stack")

	// The stack's list is newest first; GET by id returns the same object.
	var list []map[string]any
	e.Must(200, "GET", p, g.PAK, nil).JSON(t, &list)
	if len(list) != 3 || list[0]["id"] != d3["id"] || list[1]["id"] != d2["id"] || list[2]["id"] != d1["id"] {
		t.Fatalf("objects = %v, want newest first", list)
	}
	got := e.Must(200, "GET", v1+"/deployment-objects/"+d1["id"].(string), g.PAK, nil).Map(t)
	wantKeys(t, got, "GET object", objectFields...)
	if got["yaml_checksum"] != d1["yaml_checksum"] || got["sequence_id"] != d1["sequence_id"] {
		t.Fatalf("GET object = %v", got)
	}
	wantErrorMsg(t, e.Do("GET", v1+"/deployment-objects/"+uuid.NewString(), e.AdminPAK, nil), 404, "Deployment object not found", "unknown object")

	// Deleting the stack soft-deletes its objects: 404 by id.
	e.Must(204, "DELETE", v1+"/stacks/"+st, g.PAK, nil)
	wantError(t, e.Do("GET", v1+"/deployment-objects/"+d1["id"].(string), e.AdminPAK, nil), 404, "object of a deleted stack")
}

// TestRequestDecodingErrors: 415 without a JSON content type, 400 for
// malformed JSON, 422 for the wrong JSON shape — always as JSON errors.
func TestRequestDecodingErrors(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("decode", "c")
	g := e.CreateGenerator("decode")
	st := e.CreateStack(g.PAK, "decode")
	posts := []struct{ method, path, pak, valid string }{
		{"POST", v1 + "/agents", e.AdminPAK, `{"name":"n","cluster_name":"c"}`},
		{"PUT", v1 + "/agents/" + a.ID, e.AdminPAK, `{"name":"n"}`},
		{"POST", v1 + "/agents/" + a.ID + "/events", a.PAK, `{}`},
		{"POST", v1 + "/agents/" + a.ID + "/labels", e.AdminPAK, `"x"`},
		{"POST", v1 + "/agents/" + a.ID + "/annotations", e.AdminPAK, `{}`},
		{"POST", v1 + "/agents/" + a.ID + "/targets", e.AdminPAK, `{}`},
		{"POST", v1 + "/generators", e.AdminPAK, `{"name":"x"}`},
		{"PUT", v1 + "/generators/" + g.ID, g.PAK, `{}`},
		{"POST", v1 + "/stacks", g.PAK, `{"name":"x"}`},
		{"PUT", v1 + "/stacks/" + st, g.PAK, `{}`},
		{"POST", v1 + "/stacks/" + st + "/labels", g.PAK, `"x"`},
		{"POST", v1 + "/stacks/" + st + "/annotations", g.PAK, `{}`},
		{"POST", v1 + "/stacks/" + st + "/deployment-objects", g.PAK, `{}`},
	}
	for _, c := range posts {
		ctx := c.method + " " + c.path
		r := e.Do(c.method, c.path, c.pak, c.valid, "Content-Type", "text/plain")
		wantError(t, r, http.StatusUnsupportedMediaType, ctx+" as text/plain")
		r = e.Do(c.method, c.path, c.pak, c.valid, "Content-Type", "")
		wantError(t, r, http.StatusUnsupportedMediaType, ctx+" without Content-Type")
		r = e.Do(c.method, c.path, c.pak, `{"name": `)
		wantError(t, r, http.StatusBadRequest, ctx+" with malformed JSON")
		r = e.Do(c.method, c.path, c.pak, `[1,2]`)
		wantError(t, r, http.StatusUnprocessableEntity, ctx+" with an array body")
	}
	// application/*+json and charset parameters are JSON too.
	r := e.Do("POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"ct-1"`, "Content-Type", "application/json; charset=utf-8")
	if r.Status != 201 {
		t.Fatalf("charset content type: %d %s", r.Status, r.Body)
	}
	r = e.Do("POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"ct-2"`, "Content-Type", "application/merge-patch+json")
	if r.Status != 201 {
		t.Fatalf("+json content type: %d %s", r.Status, r.Body)
	}
}

func TestAuditLogs(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	start := time.Now().Add(-time.Second).UTC()
	a := e.CreateAgent("audited", "c")
	g := e.CreateGenerator("audited")
	st := e.CreateStack(g.PAK, "audited")
	e.Must(200, "POST", v1+"/agents/"+a.ID+"/rotate-pak", e.AdminPAK, nil)
	e.Must(204, "DELETE", v1+"/stacks/"+st, g.PAK, nil)
	b := e.CreateAgent("audited-2", "c")
	e.Must(204, "DELETE", v1+"/agents/"+b.ID, e.AdminPAK, nil)

	type entry struct {
		ID           string  `json:"id"`
		Timestamp    string  `json:"timestamp"`
		ActorType    string  `json:"actor_type"`
		ActorID      *string `json:"actor_id"`
		Action       string  `json:"action"`
		ResourceType string  `json:"resource_type"`
		ResourceID   *string `json:"resource_id"`
		IPAddress    *string `json:"ip_address"`
		UserAgent    *string `json:"user_agent"`
	}
	type page struct {
		Logs   []entry `json:"logs"`
		Total  int     `json:"total"`
		Count  int     `json:"count"`
		Limit  int     `json:"limit"`
		Offset int     `json:"offset"`
	}
	query := func(q string) page {
		t.Helper()
		r := e.Must(200, "GET", v1+"/admin/audit-logs"+q, e.AdminPAK, nil)
		var raw map[string]any
		r.JSON(t, &raw)
		wantKeys(t, raw, "audit page", "logs", "total", "count", "limit", "offset")
		var p page
		r.JSON(t, &p)
		if p.Count != len(p.Logs) {
			t.Fatalf("count %d != len(logs) %d", p.Count, len(p.Logs))
		}
		return p
	}
	find := func(p page, action, resource string) *entry {
		for i := range p.Logs {
			if p.Logs[i].Action == action && p.Logs[i].ResourceID != nil && *p.Logs[i].ResourceID == resource {
				return &p.Logs[i]
			}
		}
		return nil
	}

	all := query("")
	if all.Limit != 100 || all.Offset != 0 || all.Total != len(all.Logs) {
		t.Fatalf("default page: total %d count %d limit %d offset %d", all.Total, all.Count, all.Limit, all.Offset)
	}
	// Newest first.
	for i := 1; i < len(all.Logs); i++ {
		if all.Logs[i-1].Timestamp < all.Logs[i].Timestamp {
			t.Fatalf("logs not newest first at %d: %s < %s", i, all.Logs[i-1].Timestamp, all.Logs[i].Timestamp)
		}
	}
	for _, want := range []struct {
		action, resource, actorType string
		actorID                     *string
	}{
		{"agent.created", a.ID, "admin", nil},
		{"generator.created", g.ID, "admin", nil},
		{"stack.created", st, "generator", &g.ID},
		{"stack.deleted", st, "generator", &g.ID},
		{"pak.rotated", a.ID, "admin", nil},
		{"agent.deleted", b.ID, "admin", nil},
	} {
		en := find(all, want.action, want.resource)
		if en == nil {
			t.Fatalf("no %s entry for %s in %+v", want.action, want.resource, all.Logs)
		}
		if en.ActorType != want.actorType || (want.actorID == nil) != (en.ActorID == nil) ||
			(want.actorID != nil && *en.ActorID != *want.actorID) {
			t.Errorf("%s: actor %s/%v, want %s/%v", want.action, en.ActorType, en.ActorID, want.actorType, want.actorID)
		}
		if en.IPAddress == nil || *en.IPAddress == "" || en.UserAgent == nil {
			t.Errorf("%s: ip %v user agent %v, want both recorded (docs/compatibility.md#audit)", want.action, en.IPAddress, en.UserAgent)
		}
	}
	// The agent's own actions are attributed to it.
	rot := e.Must(200, "POST", v1+"/agents/"+a.ID+"/rotate-pak", e.AdminPAK, nil).Map(t)
	aPAK := rot["pak"].(string)
	e.Must(200, "POST", v1+"/agents/"+a.ID+"/rotate-pak", aPAK, nil)
	byAgent := query("?actor_type=agent")
	if byAgent.Total != 1 || len(byAgent.Logs) != 1 || byAgent.Logs[0].Action != "pak.rotated" ||
		byAgent.Logs[0].ActorID == nil || *byAgent.Logs[0].ActorID != a.ID {
		t.Fatalf("actor_type=agent: %+v", byAgent)
	}
	if p := query("?actor_id=" + a.ID); p.Total != 1 {
		t.Fatalf("actor_id filter: %+v", p)
	}
	if p := query("?actor_type=generator&actor_id=" + g.ID); p.Total != 2 {
		t.Fatalf("generator actor filter: total %d, want 2: %+v", p.Total, p.Logs)
	}

	// action: exact, and prefix with a trailing * ("agent.*" and "agent*").
	exact := query("?action=agent.created")
	if exact.Total != 2 {
		t.Fatalf("action=agent.created: total %d, want 2", exact.Total)
	}
	for _, en := range exact.Logs {
		if en.Action != "agent.created" {
			t.Fatalf("exact action filter returned %s", en.Action)
		}
	}
	prefix := query("?action=agent.*")
	seen := map[string]bool{}
	for _, en := range prefix.Logs {
		if !strings.HasPrefix(en.Action, "agent.") {
			t.Fatalf("agent.* returned %s", en.Action)
		}
		seen[en.Action] = true
	}
	if !seen["agent.created"] || !seen["agent.deleted"] || prefix.Total != len(prefix.Logs) {
		t.Fatalf("agent.* = %+v", prefix.Logs)
	}
	// "agent*" also matches agent_event.* (a plain prefix).
	if p := query("?action=agent*"); p.Total < prefix.Total {
		t.Fatalf("agent* total %d < agent.* total %d", p.Total, prefix.Total)
	}
	if p := query("?action=agent"); p.Total != 0 {
		t.Fatalf("action=agent (exact) matched %d", p.Total)
	}

	// resource_type / resource_id.
	byRes := query("?resource_id=" + st)
	if byRes.Total != 2 {
		t.Fatalf("resource_id=%s: %+v", st, byRes.Logs)
	}
	if p := query("?resource_type=stack&action=stack.deleted"); p.Total != 1 || *p.Logs[0].ResourceID != st {
		t.Fatalf("resource_type+action: %+v", p.Logs)
	}

	// from (inclusive) / to (exclusive).
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if p := query("?from=" + url.QueryEscape(future)); p.Total != 0 {
		t.Fatalf("from=future: %d", p.Total)
	}
	if p := query("?to=" + url.QueryEscape(start.Format(time.RFC3339Nano))); p.Total != 0 {
		t.Fatalf("to=before start: %d", p.Total)
	}
	total := query("").Total
	if p := query("?from=" + url.QueryEscape(start.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(future)); p.Total != total {
		t.Fatalf("from/to window: %d, want %d", p.Total, total)
	}
	// An offset other than Z is accepted.
	if p := query("?from=" + url.QueryEscape(start.In(time.FixedZone("x", 2*3600)).Format(time.RFC3339Nano))); p.Total != total {
		t.Fatalf("from with +02:00: %d, want %d", p.Total, total)
	}

	// Pagination.
	p1 := query("?limit=2")
	p2 := query("?limit=2&offset=2")
	if p1.Limit != 2 || p1.Count != 2 || p1.Total != total || p2.Offset != 2 || p2.Count != 2 {
		t.Fatalf("pages: %+v / %+v", p1, p2)
	}
	if p1.Logs[0].ID == p2.Logs[0].ID || p1.Logs[1].ID == p2.Logs[0].ID {
		t.Fatal("pages overlap")
	}
	if p := query("?offset=" + "100000"); p.Count != 0 || p.Total != total {
		t.Fatalf("offset past the end: %+v", p)
	}
	if p := query("?limit=5000"); p.Limit != 1000 {
		t.Fatalf("limit=5000 → %d, want capped at 1000", p.Limit)
	}
	for _, bad := range []string{"?limit=abc", "?limit=-1", "?offset=-3", "?offset=x", "?actor_id=nope",
		"?resource_id=nope", "?from=yesterday", "?to=2024-13-45", "?actor_type=robot"} {
		wantError(t, e.Do("GET", v1+"/admin/audit-logs"+bad, e.AdminPAK, nil), 400, "audit-logs"+bad)
	}
}

func TestConfigReload(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	body := e.Must(200, "POST", v1+"/admin/config/reload", e.AdminPAK, nil).Map(t)
	wantKeys(t, body, "reload", "reloaded_at", "changes", "success", "message")
	wantTimestamp(t, body["reloaded_at"], "reloaded_at")
	if changes, ok := body["changes"].([]any); !ok || len(changes) != 0 {
		t.Fatalf("changes = %v, want []", body["changes"])
	}
	if body["success"] != true || body["message"] != "No changes detected" {
		t.Fatalf("reload = %v", body)
	}
	// The reload itself is audited.
	r := e.Must(200, "GET", v1+"/admin/audit-logs?action=config.reloaded", e.AdminPAK, nil).Map(t)
	if r["total"] != float64(1) {
		t.Fatalf("config.reloaded entries: %v", r)
	}
	// PAKs keep working after the cache flush.
	e.Must(200, "GET", v1+"/agents", e.AdminPAK, nil)
}

func TestAuthPAKPayload(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("who", "c")
	g := e.CreateGenerator("who")
	for _, c := range []struct {
		name, pak string
		want      map[string]any
	}{
		{"admin", e.AdminPAK, map[string]any{"admin": true, "agent": nil, "generator": nil, "readonly": false}},
		{"agent", a.PAK, map[string]any{"admin": false, "agent": a.ID, "generator": nil, "readonly": false}},
		{"generator", g.PAK, map[string]any{"admin": false, "agent": nil, "generator": g.ID, "readonly": false}},
	} {
		// The agent sends {} with a JSON content type; no body works too.
		for _, body := range []any{nil, map[string]any{}} {
			got := e.Must(200, "POST", v1+"/auth/pak", c.pak, body).Map(t)
			wantKeys(t, got, c.name, "admin", "agent", "generator", "readonly")
			for k, v := range c.want {
				if got[k] != v {
					t.Fatalf("%s: %s = %v, want %v", c.name, k, got[k], v)
				}
			}
		}
	}
	wantError(t, e.Do("POST", v1+"/auth/pak", "", nil), 401, "no PAK")
	wantError(t, e.Do("POST", v1+"/auth/pak", garbagePAK, nil), 401, "garbage PAK")
	wantError(t, e.Do("POST", v1+"/auth/pak", "", nil, "Authorization", "Bearer foo"), 401, "Bearer foo")
	wantError(t, e.Do("POST", v1+"/auth/pak", "", nil, "Authorization", "a_b_c_d"), 401, "four parts")
}

// TestTimestampsAreUTCWhateverTheLocalZone re-runs shape tests in a child
// process whose local time zone is Asia/Tokyo: every timestamp must still be
// rendered in UTC with "Z", not in the server's zone
// (docs/compatibility.md#timestamps).
func TestTimestampsAreUTCWhateverTheLocalZone(t *testing.T) {
	if os.Getenv("BROKKR_TZ_CHILD") != "" {
		t.Skip("running as the child")
	}
	if _, err := time.LoadLocation("Asia/Tokyo"); err != nil {
		t.Skipf("no zoneinfo: %v", err)
	}
	t.Parallel()
	tests := []string{"TestAgentsCreateShapeAndPAK", "TestDeploymentObjects", "TestAgentEvents"}
	cmd := exec.Command(os.Args[0], "-test.run=^("+strings.Join(tests, "|")+")$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "TZ=Asia/Tokyo", "BROKKR_TZ_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child with TZ=Asia/Tokyo failed: %v\n%s", err, out)
	}
	for _, name := range tests {
		if !strings.Contains(string(out), "--- PASS: "+name+" ") {
			t.Fatalf("child did not pass %s:\n%s", name, out)
		}
	}
}
