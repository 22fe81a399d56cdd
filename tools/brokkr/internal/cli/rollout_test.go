package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// rolloutFake serves the rollout and rollback routes
// (docs/rollouts.md, shapes from api-spec/openapi.yaml) in front of
// fakeBroker, which serves the stacks the commands resolve.
type rolloutFake struct {
	*fakeBroker
	policy   json.RawMessage
	state    string
	rollback map[string]any // the last rollback request body
}

// rolloutAllowed is the from-states of each action (docs/rollouts.md).
var rolloutAllowed = map[string]map[string]string{
	"pause":   {"progressing": "paused"},
	"resume":  {"paused": "progressing", "halted": "progressing"},
	"promote": {"progressing": "progressing", "paused": "progressing", "halted": "progressing"},
	"abort":   {"progressing": "aborted", "paused": "aborted", "halted": "aborted"},
}

func (f *rolloutFake) status(stack string) map[string]any {
	counts := func(p, r, a, h, fl int) map[string]int {
		return map[string]int{"pending": p, "released": r, "applied": a, "healthy": h, "failed": fl}
	}
	return map[string]any{"id": "7d1e5c1a-0000-4000-8000-000000000001", "stack_id": stack,
		"deployment_object_id": "7d1e5c1a-0000-4000-8000-000000000002", "sequence_id": 42,
		"policy": json.RawMessage(f.policy), "state": f.state, "current_wave": 0,
		"waves": []map[string]any{
			{"index": 0, "name": "canary", "state": "releasing", "counts": counts(0, 1, 1, 2, 1), "agents": []any{}},
			{"index": 1, "name": "remaining", "state": "pending", "counts": counts(7, 0, 0, 0, 0), "agents": []any{}},
		}}
}

func (f *rolloutFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	if len(p) < 3 || p[0] != "stacks" || (p[2] != "rollout" && p[2] != "rollout-policy" && p[2] != "rollback") {
		f.fakeBroker.ServeHTTP(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.pak {
		writeJSON(w, 401, map[string]string{"error": "Invalid PAK"})
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("Idempotency-Key") == "" {
		writeJSON(w, 400, map[string]string{"error": "missing Idempotency-Key"})
		return
	}
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	route := r.Method + " " + strings.Join(p[2:], "/")
	switch {
	case route == "GET rollout-policy":
		writeJSON(w, 200, f.policy)
	case route == "PUT rollout-policy":
		var m map[string]any
		if json.Unmarshal(b, &m) != nil || (m["strategy"] != "all" && m["strategy"] != "waves") {
			writeJSON(w, 422, map[string]string{"code": "rollout_strategy_invalid", "error": "strategy must be all or waves"})
			return
		}
		f.policy = b
		writeJSON(w, 200, f.policy)
	case route == "GET rollout":
		writeJSON(w, 200, f.status(p[1]))
	case r.Method == "POST" && len(p) == 4 && p[2] == "rollout":
		to, ok := rolloutAllowed[p[3]][f.state]
		if !ok {
			writeJSON(w, 409, map[string]string{"code": "rollout_state_conflict", "error": "Cannot " + p[3] + " a rollout that is " + f.state})
			return
		}
		f.state = to
		writeJSON(w, 200, f.status(p[1]))
	case route == "POST rollback":
		f.rollback = nil
		_ = json.Unmarshal(b, &f.rollback)
		now := time.Now().UTC().Format(time.RFC3339)
		writeJSON(w, 201, map[string]any{"id": "7d1e5c1a-0000-4000-8000-000000000003", "stack_id": p[1], "sequence_id": 44,
			"yaml_content": "x", "yaml_checksum": "c", "is_deletion_marker": false, "submitted_at": now, "created_at": now,
			"updated_at": now, "deleted_at": nil, "rolled_back_from": "7d1e5c1a-0000-4000-8000-000000000002"})
	default:
		writeJSON(w, 404, map[string]string{"error": "no route " + route})
	}
}

func newRolloutFake(t *testing.T) (*rolloutFake, map[string]string, string) {
	t.Helper()
	f := &rolloutFake{fakeBroker: newFake("admin"), policy: json.RawMessage(`{"strategy":"all","max_unavailable":1,"min_healthy_seconds":0,"progress_deadline_seconds":0,"on_failure":"halt"}`), state: "progressing"}
	sid := uuid.NewString()
	f.stacks = []map[string]any{{"id": sid, "name": "web", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, map[string]string{"BROKKR_BROKER_URL": srv.URL, "BROKKR_PAK": "admin"}, sid
}

func TestRolloutPolicyGetSet(t *testing.T) {
	f, env, sid := newRolloutFake(t)
	r := runCLI(t, env, "rollout", "policy", "get", "web")
	if r.code != 0 || !strings.Contains(r.out, "strategy: all\n") || !strings.Contains(r.out, "# strategy all") {
		t.Fatalf("policy get: %+v", r)
	}
	dir := t.TempDir()
	y := filepath.Join(dir, "policy.yaml")
	_ = os.WriteFile(y, []byte("strategy: waves\nwaves:\n- name: canary\n  selector: {labels: [canary]}\nmax_unavailable: 25%\non_failure: halt\n"), 0o644)
	r = runCLI(t, env, "rollout", "policy", "set", sid, "-f", y)
	if r.code != 0 || !strings.HasPrefix(r.out, "stack/web rollout policy set\n") || !strings.Contains(r.out, "max_unavailable: 25%") {
		t.Fatalf("policy set yaml: %+v", r)
	}
	var sent map[string]any
	if json.Unmarshal(f.policy, &sent) != nil || sent["strategy"] != "waves" || sent["max_unavailable"] != "25%" {
		t.Fatalf("sent policy %s", f.policy)
	}
	j := filepath.Join(dir, "policy.json")
	_ = os.WriteFile(j, []byte(`{"strategy":"waves","max_unavailable":2}`), 0o644)
	r = runCLI(t, env, "rollout", "policy", "set", "web", "-f", j, "-o", "json")
	var got map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &got) != nil || got["max_unavailable"] != 2.0 {
		t.Fatalf("policy set json -o json: %+v", r)
	}
	_ = os.WriteFile(j, []byte(`{"strategy":"canary"}`), 0o644)
	r = runCLI(t, env, "rollout", "policy", "set", "web", "-f", j)
	if r.code != 1 || !strings.Contains(r.err, "error: strategy must be all or waves (422 Unprocessable Entity)") {
		t.Fatalf("invalid policy: %+v", r)
	}
	if r = runCLI(t, env, "rollout", "policy", "set", "web"); r.code != 1 || !strings.Contains(r.err, "needs -f") {
		t.Fatalf("no -f: %+v", r)
	}
	if r = runCLI(t, env, "rollout", "policy", "get", "nope"); r.code != 1 || !strings.Contains(r.err, `error: stack "nope" not found`) {
		t.Fatalf("unknown stack: %+v", r)
	}
}

func TestRolloutStatus(t *testing.T) {
	_, env, sid := newRolloutFake(t)
	r := runCLI(t, env, "rollout", "status", "web")
	if r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	for _, want := range []string{
		"Stack:       web (" + sid + ")\n", "Object:      sequence 42 (7d1e5c1a-0000-4000-8000-000000000002)\n",
		"State:       progressing\n", "Wave:        1 of 2\n",
	} {
		if !strings.Contains(r.out, want) {
			t.Fatalf("status lacks %q:\n%s", want, r.out)
		}
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	rows := lines[len(lines)-3:]
	if f := strings.Fields(rows[0]); strings.Join(f, " ") != "WAVE NAME STATE PENDING RELEASED APPLIED HEALTHY FAILED" {
		t.Fatalf("header %q", rows[0])
	}
	if f := strings.Fields(rows[1]); strings.Join(f, " ") != "1 canary releasing 0 1 1 2 1" {
		t.Fatalf("wave 1 %q", rows[1])
	}
	if f := strings.Fields(rows[2]); strings.Join(f, " ") != "2 remaining pending 7 0 0 0 0" {
		t.Fatalf("wave 2 %q", rows[2])
	}
	r = runCLI(t, env, "rollout", "status", sid, "-o", "json")
	var got map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &got) != nil || got["state"] != "progressing" || len(got["waves"].([]any)) != 2 {
		t.Fatalf("status -o json: %+v", r)
	}
	if r = runCLI(t, env, "rollout", "status", "web", "-o", "xml"); r.code != 1 || !strings.Contains(r.err, "unknown output format") {
		t.Fatalf("bad -o: %+v", r)
	}
}

func TestRolloutControl(t *testing.T) {
	f, env, _ := newRolloutFake(t)
	r := runCLI(t, env, "rollout", "pause", "web")
	if r.code != 0 || !strings.HasPrefix(r.out, "stack/web rollout paused\n") || !strings.Contains(r.out, "State:       paused\n") || f.state != "paused" {
		t.Fatalf("pause: %+v", r)
	}
	// Pausing a paused rollout: the 409 names the stack, the broker's
	// message, the code and where to look.
	r = runCLI(t, env, "rollout", "pause", "web")
	want := "error: rollout of stack \"web\": Cannot pause a rollout that is paused (409 Conflict, rollout_state_conflict); hint: `brokkr rollout status web` shows its state\n"
	if r.code != 1 || r.err != want || r.out != "" {
		t.Fatalf("pause twice: %+v\nwant %q", r, want)
	}
	if r = runCLI(t, env, "rollout", "resume", "web"); r.code != 0 || !strings.HasPrefix(r.out, "stack/web rollout resumed\n") || f.state != "progressing" {
		t.Fatalf("resume: %+v", r)
	}
	r = runCLI(t, env, "rollout", "promote", "web", "-o", "json")
	var got map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &got) != nil || got["state"] != "progressing" {
		t.Fatalf("promote -o json: %+v", r)
	}
	if r = runCLI(t, env, "rollout", "abort", "web"); r.code != 0 || !strings.HasPrefix(r.out, "stack/web rollout aborted\n") || f.state != "aborted" {
		t.Fatalf("abort: %+v", r)
	}
	if r = runCLI(t, env, "rollout", "resume", "web"); r.code != 1 || !strings.Contains(r.err, "Cannot resume a rollout that is aborted (409 Conflict, rollout_state_conflict)") {
		t.Fatalf("resume aborted: %+v", r)
	}
}

func TestRollback(t *testing.T) {
	f, env, _ := newRolloutFake(t)
	r := runCLI(t, env, "rollback", "web", "--to-sequence", "41")
	want := "stack/web rolled back to sequence 41: new deployment object 7d1e5c1a-0000-4000-8000-000000000003 (sequence 44)\n"
	if r.code != 0 || r.out != want || f.rollback["to_sequence_id"] != 41.0 || f.rollback["deployment_object_id"] != nil {
		t.Fatalf("rollback --to-sequence: %+v, sent %v", r, f.rollback)
	}
	obj := uuid.NewString()
	r = runCLI(t, env, "rollback", "web", "--object", obj, "-o", "json")
	var got map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.out), &got) != nil || got["sequence_id"] != 44.0 || f.rollback["deployment_object_id"] != obj || f.rollback["to_sequence_id"] != nil {
		t.Fatalf("rollback --object: %+v, sent %v", r, f.rollback)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"rollback", "web"}, "rollback needs --to-sequence N or --object ID"},
		{[]string{"rollback", "web", "--to-sequence", "4", "--object", obj}, "not both"},
		{[]string{"rollback", "web", "--object", "x"}, `--object "x" is not a deployment-object id`},
	} {
		if r := runCLI(t, env, tc.args...); r.code != 1 || !strings.Contains(r.err, tc.err) {
			t.Fatalf("%v: %+v", tc.args, r)
		}
	}
}
