package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// fakeBroker is a pure-logic stand-in for the routes apply, --wait and the
// registration commands use; the real broker is exercised by
// tools/brokkr/e2e. Its answers follow api-spec/openapi.yaml (creates
// answer 201 here, as the original does, to prove any 2xx is accepted) and,
// for registrations, the original's OpenAPI.
type fakeBroker struct {
	mu      sync.Mutex
	pak     string
	stacks  []map[string]any
	labels  map[string][]string
	objects map[string][]map[string]any
	agents  []map[string]any
	assoc   map[string][]string // agent id → stack ids
	events  []map[string]any
	regs    []map[string]any
	// gens are the generators POST /agents' generator_ids may name.
	gens map[string]bool
	// whoami answers POST /auth/pak when set (unset: 404, as brokers
	// the CLI must still work with).
	whoami  map[string]any
	seq     int64
	creates int
	keys    map[string]bool
	// onEvents runs before /agent-events answers (to script agents).
	onEvents func(f *fakeBroker)
}

func newFake(pak string) *fakeBroker {
	return &fakeBroker{pak: pak, labels: map[string][]string{}, objects: map[string][]map[string]any{},
		assoc: map[string][]string{}, keys: map[string]bool{}, seq: 41}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeBroker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.pak {
		writeJSON(w, 401, map[string]string{"error": "Invalid PAK"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/api/v1/auth/pak" && f.whoami != nil {
		writeJSON(w, 200, f.whoami)
		return
	}
	if r.Method == http.MethodPost {
		k := r.Header.Get("Idempotency-Key")
		if k == "" || f.keys[k] {
			writeJSON(w, 400, map[string]string{"error": "missing or reused Idempotency-Key " + k})
			return
		}
		f.keys[k] = true
	}
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	var body map[string]any
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		if len(b) > 0 && body == nil {
			var s string
			if json.Unmarshal(b, &s) == nil {
				body = map[string]any{"label": s}
			}
		}
	}
	now := time.Now().UTC().Format(time.RFC3339)
	switch {
	case r.Method == "GET" && len(p) == 1 && p[0] == "stacks":
		writeJSON(w, 200, f.stacks)
	case r.Method == "POST" && len(p) == 1 && p[0] == "stacks":
		deps, _ := body["depends_on"].([]any)
		if deps == nil {
			deps = []any{}
		}
		s := map[string]any{"id": uuid.NewString(), "name": body["name"], "description": nil, "generator_id": nil,
			"created_at": now, "updated_at": now, "deleted_at": nil, "depends_on": deps}
		f.stacks = append(f.stacks, s)
		f.creates++
		writeJSON(w, 201, s)
	case r.Method == "GET" && len(p) == 2 && p[0] == "stacks":
		for _, s := range f.stacks {
			if s["id"] == p[1] {
				writeJSON(w, 200, s)
				return
			}
		}
		writeJSON(w, 404, map[string]string{"code": "stack_not_found", "error": "Stack not found"})
	case r.Method == "GET" && len(p) == 3 && p[0] == "stacks" && p[2] == "labels":
		var out []map[string]any
		for _, l := range f.labels[p[1]] {
			out = append(out, map[string]any{"id": uuid.NewString(), "stack_id": p[1], "label": l})
		}
		writeJSON(w, 200, out)
	case r.Method == "POST" && len(p) == 3 && p[0] == "stacks" && p[2] == "labels":
		l, _ := body["label"].(string)
		f.labels[p[1]] = append(f.labels[p[1]], l)
		writeJSON(w, 201, map[string]any{"id": uuid.NewString(), "stack_id": p[1], "label": l})
	case r.Method == "GET" && len(p) == 3 && p[0] == "stacks" && p[2] == "deployment-objects":
		objs := f.objects[p[1]]
		out := make([]map[string]any, 0, len(objs))
		for i := len(objs) - 1; i >= 0; i-- {
			out = append(out, objs[i])
		}
		writeJSON(w, 200, out)
	case r.Method == "POST" && len(p) == 3 && p[0] == "stacks" && p[2] == "deployment-objects":
		y, _ := body["yaml_content"].(string)
		sum := sha256.Sum256([]byte(y))
		f.seq++
		o := map[string]any{"id": uuid.NewString(), "stack_id": p[1], "sequence_id": f.seq, "yaml_content": y,
			"yaml_checksum": hex.EncodeToString(sum[:]), "is_deletion_marker": false, "submitted_at": now,
			"created_at": now, "updated_at": now, "deleted_at": nil}
		f.objects[p[1]] = append(f.objects[p[1]], o)
		f.creates++
		writeJSON(w, 201, o)
	case r.Method == "GET" && len(p) == 1 && p[0] == "agents":
		writeJSON(w, 200, f.agents)
	case r.Method == "POST" && len(p) == 1 && p[0] == "agents":
		ids, _ := body["generator_ids"].([]any)
		for _, id := range ids {
			if !f.gens[id.(string)] {
				writeJSON(w, 400, map[string]any{"code": "invalid_generator_id", "message": "Invalid generator ID: " + id.(string)})
				return
			}
		}
		a := map[string]any{"id": uuid.NewString(), "name": body["name"], "cluster_name": body["cluster_name"], "status": "ACTIVE",
			"created_at": now, "updated_at": now, "deleted_at": nil, "last_heartbeat": nil}
		f.agents = append(f.agents, a)
		for _, id := range ids {
			f.regs = append(f.regs, map[string]any{"id": uuid.NewString(), "agent_id": a["id"], "generator_id": id, "registered_at": now})
		}
		writeJSON(w, 201, map[string]any{"agent": a, "initial_pak": "brokkr_BRnew_x", "pak": "brokkr_BRnew_x"})
	case r.Method == "GET" && len(p) == 3 && p[0] == "agents" && p[2] == "stacks":
		var out []map[string]any
		for _, sid := range f.assoc[p[1]] {
			for _, s := range f.stacks {
				if s["id"] == sid {
					out = append(out, s)
				}
			}
		}
		writeJSON(w, 200, out)
	case r.Method == "GET" && len(p) == 1 && p[0] == "agent-events":
		if f.onEvents != nil {
			f.onEvents(f)
		}
		writeJSON(w, 200, f.events)
	// The original's registration routes.
	case r.Method == "POST" && len(p) == 3 && p[0] == "generators" && p[2] == "register":
		for _, g := range f.regs {
			if g["generator_id"] == p[1] && g["agent_id"] == body["agent_id"] {
				writeJSON(w, 409, map[string]any{"code": "already_registered", "message": "Agent is already registered with this generator"})
				return
			}
		}
		reg := map[string]any{"id": uuid.NewString(), "agent_id": body["agent_id"], "generator_id": p[1], "registered_at": now}
		f.regs = append(f.regs, reg)
		writeJSON(w, 201, reg)
	case r.Method == "DELETE" && len(p) == 3 && p[0] == "generators" && p[2] == "register":
		for i, g := range f.regs {
			if g["generator_id"] == p[1] && g["agent_id"] == body["agent_id"] {
				f.regs = append(f.regs[:i], f.regs[i+1:]...)
				w.WriteHeader(204)
				return
			}
		}
		writeJSON(w, 404, map[string]any{"code": "not_found", "message": "Registration not found"})
	case r.Method == "GET" && len(p) == 3 && p[0] == "agents" && p[2] == "registrations":
		out := []map[string]any{}
		for _, g := range f.regs {
			if g["agent_id"] == p[1] {
				out = append(out, g)
			}
		}
		writeJSON(w, 200, out)
	case r.Method == "GET" && len(p) == 3 && p[0] == "generators" && p[2] == "registered-agents":
		out := []map[string]any{}
		for _, g := range f.regs {
			if g["generator_id"] == p[1] {
				out = append(out, g)
			}
		}
		writeJSON(w, 200, out)
	default:
		writeJSON(w, 404, map[string]string{"error": "no route " + r.Method + " " + r.URL.Path})
	}
}

type run struct {
	out, err string
	code     int
}

func runCLI(t *testing.T, env map[string]string, args ...string) run {
	t.Helper()
	var out, errb bytes.Buffer
	a := &App{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] },
		PollMinimum: 5 * time.Millisecond}
	// Never read the real ~/.brokkr/config.
	hasConfig := false
	for _, x := range args {
		if x == "--config" {
			hasConfig = true
		}
	}
	if !hasConfig {
		args = append(args, "--config", filepath.Join(t.TempDir(), "none"))
	}
	code := a.Run(args)
	return run{out.String(), errb.String(), code}
}

func manifests(t *testing.T, message string) string {
	t.Helper()
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  m: "+message+"\n"), 0o644)
	return dir
}

func TestApplyOutputsAndIdempotence(t *testing.T) {
	f := newFake("brokkr_BRgenerat_pak")
	srv := httptest.NewServer(f)
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL + "/api/v1", "BROKKR_PAK": "brokkr_BRgenerat_pak"}
	dir := manifests(t, "one")

	r := runCLI(t, env, "apply", "-f", dir, "--stack", "payments", "--target-label", "env:prod", "--target-label", "region:us")
	if r.code != 0 || r.out != "created stack \"payments\": first revision (sequence 42)\n" || r.err != "" {
		t.Fatalf("first apply: %+v", r)
	}
	r = runCLI(t, env, "apply", "-f", dir, "--stack", "payments", "--target-label", "env:prod")
	if r.code != 0 || r.out != "unchanged: stack \"payments\" already current\n" {
		t.Fatalf("second apply: %+v", r)
	}
	if f.creates != 2 {
		t.Fatalf("unchanged apply created something: %d creates", f.creates)
	}
	r = runCLI(t, env, "apply", "-f", manifests(t, "two"), "--stack", "payments")
	if r.code != 0 || r.out != "updated stack \"payments\": new revision (sequence 43)\n" {
		t.Fatalf("changed apply: %+v", r)
	}
	sid := f.stacks[0]["id"].(string)
	if got := strings.Join(f.labels[sid], ","); got != "env:prod,region:us" {
		t.Fatalf("stack labels %q: labels are additive and added once", got)
	}
	// A stack that exists but has no object yet: first revision.
	f.stacks = append(f.stacks, map[string]any{"id": uuid.NewString(), "name": "empty", "created_at": time.Now().UTC().Format(time.RFC3339), "updated_at": time.Now().UTC().Format(time.RFC3339)})
	r = runCLI(t, env, "apply", "-f", dir, "--stack", "empty")
	if r.code != 0 || !strings.HasPrefix(r.out, "created stack \"empty\": first revision") {
		t.Fatalf("apply to an empty stack: %+v", r)
	}
}

func TestApplyErrors(t *testing.T) {
	f := newFake("right")
	srv := httptest.NewServer(f)
	defer srv.Close()
	dir := manifests(t, "x")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		err  string
	}{
		{"no broker URL", map[string]string{"BROKKR_PAK": "right"}, []string{"apply", "-f", dir, "--stack", "s"}, "error: no broker URL"},
		{"no PAK", map[string]string{"BROKKR_BROKER_URL": srv.URL}, []string{"apply", "-f", dir, "--stack", "s"}, "error: no PAK"},
		{"wrong PAK", map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "wrong"}, []string{"apply", "-f", dir, "--stack", "s"},
			"error: Invalid PAK (401 Unauthorized); hint: the PAK is missing, malformed or unknown: run `brokkr login`"},
		{"no stack flag", map[string]string{}, []string{"apply", "-f", dir}, "error: apply needs -f/--filename and --stack"},
		{"unreadable bundle", map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "right"}, []string{"apply", "-f", dir + "/nope", "--stack", "s"}, "error: reading bundle"},
		{"bad URL", map[string]string{"BROKKR_BROKER_URL": "broker:3000", "BROKKR_PAK": "right"}, []string{"apply", "-f", dir, "--stack", "s"}, "not an http(s) URL"},
		{"unknown flag", map[string]string{}, []string{"apply", "--nope"}, "error: unknown flag: --nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.env, tc.args...)
			if r.code != 1 || !strings.Contains(r.err, tc.err) || r.out != "" {
				t.Fatalf("got %+v, want exit 1 and %q", r, tc.err)
			}
			if strings.Contains(r.err, "right") || strings.Contains(r.err, "wrong") {
				t.Fatalf("the PAK is in the error: %q", r.err)
			}
		})
	}
}

// The flag beats the environment, which beats the config file.
func TestConnectionSettingsPrecedence(t *testing.T) {
	good := newFake("file-pak")
	srv := httptest.NewServer(good)
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "config")
	_ = os.WriteFile(cfg, []byte(fmt.Sprintf("broker_url = %q\npak = \"file-pak\"\n", srv.URL)), 0o600)
	dir := manifests(t, "x")
	if r := runCLI(t, nil, "apply", "-f", dir, "--stack", "s", "--config", cfg); r.code != 0 {
		t.Fatalf("config file only: %+v", r)
	}
	if r := runCLI(t, map[string]string{"BROKKR_PAK": "env-pak"}, "apply", "-f", dir, "--stack", "s", "--config", cfg); r.code != 1 || !strings.Contains(r.err, "401") {
		t.Fatalf("env PAK should override the file: %+v", r)
	}
	if r := runCLI(t, map[string]string{"BROKKR_PAK": "env-pak"}, "--pak", "file-pak", "apply", "-f", dir, "--stack", "s", "--config", cfg); r.code != 0 {
		t.Fatalf("flag PAK (before the subcommand) should override env: %+v", r)
	}
	_ = os.WriteFile(cfg, []byte("broker_url = [\n"), 0o600)
	if r := runCLI(t, nil, "apply", "-f", dir, "--stack", "s", "--config", cfg); r.code != 1 || !strings.Contains(r.err, "malformed config") {
		t.Fatalf("malformed config: %+v", r)
	}
}

func scriptedBroker(t *testing.T, statuses map[string]string) (*fakeBroker, *httptest.Server, map[string]string) {
	f := newFake("admin")
	ids := map[string]string{}
	for _, name := range []string{"cluster-a", "cluster-b", "cluster-c"} {
		id := uuid.NewString()
		ids[name] = id
		f.agents = append(f.agents, map[string]any{"id": id, "name": name, "cluster_name": name, "status": "ACTIVE",
			"created_at": time.Now().UTC().Format(time.RFC3339), "updated_at": time.Now().UTC().Format(time.RFC3339)})
	}
	// cluster-c is not targeted.
	f.onEvents = func(f *fakeBroker) {
		if len(f.stacks) == 0 {
			return
		}
		sid := f.stacks[0]["id"].(string)
		objs := f.objects[sid]
		obj := objs[len(objs)-1]["id"]
		f.events = f.events[:0]
		for name, st := range statuses {
			if st == "" {
				continue
			}
			msg := any(nil)
			if st == "FAILURE" {
				msg = "no matches for kind \"Widget\""
			}
			f.events = append(f.events, map[string]any{"id": uuid.NewString(), "agent_id": ids[name], "deployment_object_id": obj,
				"event_type": "DEPLOY", "status": st, "message": msg, "created_at": time.Now().UTC().Format(time.RFC3339Nano),
				"updated_at": time.Now().UTC().Format(time.RFC3339Nano)})
		}
	}
	return f, httptest.NewServer(f), ids
}

func TestApplyWaitExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses map[string]string
		timeout  string
		code     int
		want     string
	}{
		{"all applied", map[string]string{"cluster-a": "SUCCESS", "cluster-b": "SUCCESS"}, "5s", 0, `applied: stack "web" (sequence 42) on 2 of 2 agents`},
		{"one failed", map[string]string{"cluster-a": "SUCCESS", "cluster-b": "FAILURE"}, "5s", 2, `1 of 2 agents failed to apply stack "web" (sequence 42): cluster-b (cluster-b): no matches for kind "Widget"`},
		{"timeout", map[string]string{"cluster-a": "SUCCESS"}, "300ms", 3, "timed out after 300ms: 1 of 2 agents reported for stack \"web\" (sequence 42); still waiting for cluster-b (cluster-b)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv, ids := scriptedBroker(t, tc.statuses)
			defer srv.Close()
			env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
			// Create the stack first, then target it at cluster-a and cluster-b.
			if r := runCLI(t, env, "apply", "-f", manifests(t, "v1"), "--stack", "web"); r.code != 0 {
				t.Fatalf("setup: %+v", r)
			}
			f.mu.Lock()
			f.objects = map[string][]map[string]any{}
			f.seq = 41
			sid := f.stacks[0]["id"].(string)
			f.assoc[ids["cluster-a"]] = []string{sid}
			f.assoc[ids["cluster-b"]] = []string{sid}
			f.mu.Unlock()
			r := runCLI(t, env, "apply", "-f", manifests(t, "v2"), "--stack", "web", "--wait", "--timeout", tc.timeout)
			if r.code != tc.code || !strings.Contains(r.out+r.err, tc.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant: %s", r.code, tc.code, r.out, r.err, tc.want)
			}
			if !strings.HasPrefix(r.out, "created stack \"web\": first revision (sequence 42)\n") {
				t.Fatalf("apply line missing: %q", r.out)
			}
			if tc.code == 0 && (!strings.Contains(r.out, "cluster-a (cluster-a): applied") || strings.Contains(r.out, "cluster-c")) {
				t.Fatalf("per-agent lines: %q", r.out)
			}
		})
	}
}

// A generator PAK lists only the agents registered with it (0.9.1) and may
// not read their stacks: --wait does not take that list for the fleet, and
// waits for --expect (default 1) agents instead.
func TestApplyWaitAsGenerator(t *testing.T) {
	f, srv, _ := scriptedBroker(t, map[string]string{"cluster-a": "SUCCESS"})
	defer srv.Close()
	f.mu.Lock()
	f.whoami = map[string]any{"admin": false, "agent": nil, "generator": uuid.NewString(), "readonly": false}
	f.mu.Unlock()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
	r := runCLI(t, env, "apply", "-f", manifests(t, "v1"), "--stack", "web", "--wait", "--timeout", "5s")
	if r.code != 0 || !strings.Contains(r.out, "on 1 of 1 agents") {
		t.Fatalf("generator --wait: %+v", r)
	}
}

func TestApplyWaitNothingTargeted(t *testing.T) {
	_, srv, _ := scriptedBroker(t, nil)
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
	r := runCLI(t, env, "apply", "-f", manifests(t, "v1"), "--stack", "web", "--wait", "--timeout", "1s")
	if r.code != 1 || !strings.Contains(r.err, `no agent is targeted by stack "web"`) {
		t.Fatalf("%+v", r)
	}
}

func TestRegistrationCommands(t *testing.T) {
	f := newFake("admin")
	srv := httptest.NewServer(f)
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
	agent, gen := uuid.NewString(), uuid.NewString()

	r := runCLI(t, env, "register", "--agent", agent, "--generator", gen)
	if r.code != 0 || !strings.HasPrefix(r.out, "registered agent "+agent+" with generator "+gen) {
		t.Fatalf("register: %+v", r)
	}
	r = runCLI(t, env, "register", "--agent", agent, "--generator", gen)
	if r.code != 1 || !strings.Contains(r.err, "error: Agent is already registered with this generator (409 Conflict)") {
		t.Fatalf("re-register: %+v", r)
	}
	r = runCLI(t, env, "registrations", "--agent", agent)
	if r.code != 0 || !strings.Contains(r.out, "GENERATOR") || !strings.Contains(r.out, gen) {
		t.Fatalf("registrations --agent: %+v", r)
	}
	r = runCLI(t, env, "registrations", "--generator", gen, "-o", "json")
	var regs []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &regs) != nil || len(regs) != 1 || regs[0]["agent_id"] != agent {
		t.Fatalf("registrations --generator -o json: %+v", r)
	}
	if r = runCLI(t, env, "registrations", "--agent", agent, "--generator", gen); r.code != 1 || !strings.Contains(r.err, "none of the others can be") {
		t.Fatalf("both flags: %+v", r)
	}
	if r = runCLI(t, env, "registrations"); r.code != 1 || !strings.Contains(r.err, "exactly one of --agent or --generator") {
		t.Fatalf("no flag: %+v", r)
	}
	if r = runCLI(t, env, "register", "--agent", "nope", "--generator", gen); r.code != 1 || !strings.Contains(r.err, `--agent "nope" is not a UUID`) {
		t.Fatalf("bad uuid: %+v", r)
	}
	r = runCLI(t, env, "deregister", "--agent", agent, "--generator", gen)
	if r.code != 0 || !strings.Contains(r.out, "deregistered agent "+agent) || len(f.regs) != 0 {
		t.Fatalf("deregister: %+v", r)
	}
	r = runCLI(t, env, "deregister", "--agent", agent, "--generator", gen)
	if r.code != 1 || !strings.Contains(r.err, "Registration not found (404 Not Found)") {
		t.Fatalf("deregister twice: %+v", r)
	}
}

// create agent: 0.9.1's output lines, Registered with: included, and
// --generator-ids (comma-separated, repeatable) sent as generator_ids.
func TestCreateAgentRegisteredWith(t *testing.T) {
	f := newFake("admin")
	srv := httptest.NewServer(f)
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
	g1, g2, g3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.gens = map[string]bool{g1: true, g2: true, g3: true}

	r := runCLI(t, env, "create", "agent", "prod-1", "--cluster", "us-east-1")
	want := "Agent created successfully:\nID: " + f.agents[0]["id"].(string) +
		"\nName: prod-1\nCluster: us-east-1\nInitial PAK: brokkr_BRnew_x\nRegistered with: system (fleet scope)\n"
	if r.code != 0 || r.out != want {
		t.Fatalf("create agent: %+v\nwant %q", r, want)
	}
	r = runCLI(t, env, "create", "agent", "prod-2", "--cluster-name", "c", "--generator-ids", g1+","+g2, "--generator-ids", g3+","+g1)
	if r.code != 0 || !strings.HasSuffix(r.out, "\nRegistered with: system (fleet scope), "+g1+", "+g2+", "+g3+"\n") {
		t.Fatalf("create agent --generator-ids: %+v", r)
	}
	if len(f.regs) != 3 {
		t.Fatalf("registrations sent: %v", f.regs)
	}
	r = runCLI(t, env, "create", "agent", "prod-3", "--cluster", "c", "--generator-ids", uuid.NewString())
	if r.code != 1 || !strings.Contains(r.err, "Invalid generator ID") || len(f.agents) != 2 {
		t.Fatalf("unknown generator: %+v", r)
	}
	if r = runCLI(t, env, "create", "agent", "prod-4", "--cluster", "c", "--generator-ids", "nope"); r.code != 1 || !strings.Contains(r.err, `--generator-ids: "nope" is not a UUID`) {
		t.Fatalf("malformed id: %+v", r)
	}
}

// On a terminal --wait keeps one progress line instead of one per agent.
func TestApplyWaitTerminalProgress(t *testing.T) {
	f, srv, ids := scriptedBroker(t, map[string]string{"cluster-a": "SUCCESS", "cluster-b": "FAILURE"})
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}
	if r := runCLI(t, env, "apply", "-f", manifests(t, "v1"), "--stack", "web"); r.code != 0 {
		t.Fatalf("setup: %+v", r)
	}
	sid := f.stacks[0]["id"].(string)
	f.assoc[ids["cluster-a"]] = []string{sid}
	f.assoc[ids["cluster-b"]] = []string{sid}
	var out, errb bytes.Buffer
	a := &App{In: strings.NewReader(""), Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] },
		IsTerminal: func(io.Writer) bool { return true }, PollMinimum: 5 * time.Millisecond}
	code := a.Run([]string{"apply", "-f", manifests(t, "v2"), "--stack", "web", "--wait", "--config", filepath.Join(t.TempDir(), "c")})
	if code != ExitFailed || !strings.Contains(out.String(), "\r\033[K1/2 applied, 1 failed: cluster-b (cluster-b): no matches for kind") ||
		strings.Contains(out.String(), ": applied\n") {
		t.Fatalf("exit %d, terminal output %q", code, out.String())
	}
}

// create stack --depends-on resolves each stack by name or id and sends
// their ids in depends_on.
func TestCreateStackDependsOn(t *testing.T) {
	f := newFake("brokkr_BRgenerat_pak")
	srv := httptest.NewServer(f)
	defer srv.Close()
	env := map[string]string{"BROKKR_BROKER_URL": srv.URL + "/api/v1", "BROKKR_PAK": "brokkr_BRgenerat_pak"}
	for _, name := range []string{"crds", "db"} {
		if r := runCLI(t, env, "create", "stack", name); r.code != 0 {
			t.Fatalf("create %s: %+v", name, r)
		}
	}
	crds, db := f.stacks[0]["id"].(string), f.stacks[1]["id"].(string)
	if r := runCLI(t, env, "create", "stack", "app", "--depends-on", "crds", "--depends-on", db); r.code != 0 {
		t.Fatalf("create app: %+v", r)
	}
	got, _ := json.Marshal(f.stacks[2]["depends_on"])
	if want, _ := json.Marshal([]string{crds, db}); string(got) != string(want) {
		t.Fatalf("depends_on sent %s, want %s", got, want)
	}
	if r := runCLI(t, env, "create", "stack", "x", "--depends-on", "nope"); r.code == 0 {
		t.Fatalf("an unknown dependency must fail: %+v", r)
	}
}
