package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// report posts an agent event with the agent's own PAK, as the agent does
// after applying (these tests play the agent; the tutorials run the real one).
func (w *world) report(agentID, pak, objectID, status, message string) {
	w.t.Helper()
	body, _ := json.Marshal(map[string]any{"deployment_object_id": objectID, "event_type": "DEPLOY", "status": status, "message": message})
	req, _ := http.NewRequest("POST", w.url+"/api/v1/agents/"+agentID+"/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pak)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("report event: %d", resp.StatusCode)
	}
}

// background starts the CLI and returns a function that waits for it.
func (w *world) background(env []string, args ...string) func() result {
	w.t.Helper()
	cmd := exec.Command(filepath.Join(w.bin, "brokkr"), args...)
	cmd.Env = append(append(cleanEnv(), "HOME="+w.home), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return func() result {
		err := cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return result{out: out.String(), err: errb.String(), code: code}
	}
}

func (w *world) jsonOut(v any, args ...string) {
	w.t.Helper()
	if err := json.Unmarshal([]byte(w.ok(args...)), v); err != nil {
		w.t.Fatalf("brokkr %v -o json: %v", args, err)
	}
}

// latestObject waits until the stack has a deployment object newer than
// after and returns its id.
func (w *world) latestObject(stack string, after float64) string {
	w.t.Helper()
	var id string
	testsupport.Eventually(w.t, 20*time.Second, "the new deployment object of "+stack, func() bool {
		var objs []map[string]any
		w.jsonOut(&objs, "get", "deployment-objects", "--stack", stack, "-o", "json")
		if len(objs) > 0 && objs[0]["sequence_id"].(float64) > after {
			id = objs[0]["id"].(string)
			return true
		}
		return false
	})
	return id
}

// TestApplyWaitAgainstTheBroker drives apply --wait against the real broker
// (auth, api, PostgreSQL, Redis) with agents played by the test: which
// agents a stack reaches (label and explicit target) is the broker's
// answer, and the events are read back through the broker's scoping.
func TestApplyWaitAgainstTheBroker(t *testing.T) {
	w := newWorld(t)
	if r := w.brokkr([]string{"BROKKR_PAK=" + w.adminPAK, "BROKKR_BROKER_URL=" + w.url + "/api/v1/"}, "login"); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	pak1, pak2 := w.registerAgent("edge-1", "c1"), w.registerAgent("edge-2", "c2")
	w.registerAgent("edge-3", "c3") // reaches nothing
	var agents []map[string]any
	w.jsonOut(&agents, "get", "agents", "-o", "json")
	ids := map[string]string{}
	for _, a := range agents {
		ids[a["name"].(string)] = a["id"].(string)
	}
	w.ok("create", "stack", "web", "--label", "env:prod")
	w.ok("label", "agent", "edge-1", "env:prod") // by label
	w.ok("target", "edge-2", "web")              // explicitly

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: \"1\"\n")

	// One agent fails: exit 2, naming it and its message.
	wait := w.background(nil, "apply", "-f", dir, "--stack", "web", "--wait", "--timeout", "60s")
	obj := w.latestObject("web", 0)
	w.report(ids["edge-1"], pak1, obj, "SUCCESS", "")
	w.report(ids["edge-2"], pak2, obj, "FAILURE", "admission webhook denied the ConfigMap")
	r := wait()
	if r.code != 2 || !regexp.MustCompile(`^created stack "web": first revision \(sequence \d+\)\n`).MatchString(r.out) ||
		!strings.Contains(r.err, `1 of 2 agents failed to apply stack "web"`) || !strings.Contains(r.err, "edge-2 (c2): admission webhook denied the ConfigMap") ||
		strings.Contains(r.out, "edge-3") {
		t.Fatalf("apply --wait with a failure: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}

	// Both apply the next revision: exit 0.
	writeFile(t, filepath.Join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: \"2\"\n")
	var objs []map[string]any
	w.jsonOut(&objs, "get", "deployment-objects", "--stack", "web", "-o", "json")
	wait = w.background(nil, "apply", "-f", dir, "--stack", "web", "--wait", "--timeout", "60s")
	obj = w.latestObject("web", objs[0]["sequence_id"].(float64))
	w.report(ids["edge-2"], pak2, obj, "SUCCESS", "")
	w.report(ids["edge-1"], pak1, obj, "SUCCESS", "")
	r = wait()
	if r.code != 0 || !strings.HasPrefix(r.out, `updated stack "web": new revision`) || !strings.Contains(r.out, `on 2 of 2 agents`) {
		t.Fatalf("apply --wait, all applied: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	// Unchanged and already applied: 0 at once.
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "web", "--wait", "--timeout", "10s")
	if r.code != 0 || !strings.HasPrefix(r.out, "unchanged: stack \"web\" already current\n") {
		t.Fatalf("unchanged --wait: %+v", r)
	}
	// Nobody reports: exit 3 naming who is silent.
	writeFile(t, filepath.Join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  v: \"3\"\n")
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "web", "--wait", "--timeout", "2s")
	if r.code != 3 || !strings.Contains(r.err, "timed out after 2s: 0 of 2 agents reported") || !strings.Contains(r.err, "edge-1 (c1)") {
		t.Fatalf("apply --wait timeout: %+v", r)
	}

	// The audit log records the CLI as the user agent; events are scoped to the stack.
	var page struct {
		Logs []map[string]any `json:"logs"`
	}
	w.jsonOut(&page, "get", "audit-logs", "--limit", "5", "-o", "json")
	if len(page.Logs) == 0 || !strings.HasPrefix(fmt.Sprint(page.Logs[0]["user_agent"]), "brokkr-cli/") {
		t.Fatalf("audit log: %v", page.Logs)
	}
	if ev := w.ok("get", "events", "--stack", "web"); strings.Count(ev, "SUCCESS") != 3 || strings.Count(ev, "FAILURE") != 1 {
		t.Fatalf("get events --stack web:\n%s", ev)
	}
	if d := w.ok("describe", "stack", "web"); !strings.Contains(d, "edge-1") || !strings.Contains(d, "edge-2") || strings.Contains(d, "edge-3") {
		t.Fatalf("describe stack:\n%s", d)
	}
}

// TestGeneratorPAKAndErrors: apply with a generator PAK (the original's
// CI use), the three lines, and the errors a user sees.
func TestGeneratorPAKAndErrors(t *testing.T) {
	w := newWorld(t)
	admin := []string{"BROKKR_PAK=" + w.adminPAK, "BROKKR_BROKER_URL=" + w.url}
	r := w.brokkr(admin, "create", "generator", "ci")
	m := regexp.MustCompile(`(?m)^Initial PAK: (brokkr_BR\S+)$`).FindStringSubmatch(r.out)
	if r.code != 0 || m == nil {
		t.Fatalf("create generator: %+v", r)
	}
	gen := []string{"BROKKR_PAK=" + m[1], "BROKKR_BROKER_URL=" + w.url + "/api/v1"}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ci\n")
	for i, want := range []string{`^created stack "payments": first revision \(sequence \d+\)\n$`, `^unchanged: stack "payments" already current\n$`} {
		r = w.brokkr(gen, "apply", "-f", dir, "--stack", "payments", "--target-label", "env:prod")
		if r.code != 0 || !regexp.MustCompile(want).MatchString(r.out) || r.err != "" {
			t.Fatalf("generator apply %d: %+v", i, r)
		}
	}
	writeFile(t, filepath.Join(dir, "b.yml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: ci\n")
	if r = w.brokkr(gen, "apply", "-f", dir, "--stack", "payments"); r.code != 0 || !regexp.MustCompile(`^updated stack "payments": new revision \(sequence \d+\)\n$`).MatchString(r.out) {
		t.Fatalf("generator apply after a change: %+v", r)
	}
	// The stack is the generator's, with the label, as the admin sees it.
	var stacks []map[string]any
	if err := json.Unmarshal([]byte(w.brokkr(admin, "get", "stacks", "-l", "env:prod", "-o", "json").out), &stacks); err != nil ||
		len(stacks) != 1 || stacks[0]["generator_id"] == nil {
		t.Fatalf("stack: %v %v", err, stacks)
	}
	// A generator lists the agents registered with it (0.9.1): none here.
	if r = w.brokkr(gen, "get", "agents", "-o", "json"); r.code != 0 || strings.Contains(r.out, `"id"`) {
		t.Fatalf("generator get agents: %+v", r)
	}
	// A wrong PAK: 401 and "run brokkr login"; the PAK is not echoed.
	r = w.brokkr([]string{"BROKKR_PAK=brokkr_BRnotreal_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "BROKKR_BROKER_URL=" + w.url}, "get", "stacks")
	if r.code != 1 || !strings.Contains(r.err, "401 Unauthorized") || !strings.Contains(r.err, "brokkr login") || strings.Contains(r.err, "xxxxxxxx") {
		t.Fatalf("wrong PAK: %+v", r)
	}
	// The registration routes are not served by this broker yet.
	r = w.brokkr(admin, "register", "--agent", "3f0c2b1e-0000-4000-8000-000000000001", "--generator", "3f0c2b1e-0000-4000-8000-000000000002")
	if r.code != 1 || !strings.Contains(r.err, "404 Not Found") || !strings.Contains(r.err, "generator registration") {
		t.Fatalf("register against this broker: %+v", r)
	}
	// --debug shows requests, never the PAK.
	r = w.brokkr(admin, "get", "stacks", "--debug")
	if r.code != 0 || !strings.Contains(r.err, "Authorization: REDACTED") || strings.Contains(r.err, w.adminPAK) {
		t.Fatalf("--debug: %+v", r)
	}
	// version reads the server's API version without a PAK.
	if r = w.brokkr([]string{"BROKKR_BROKER_URL=" + w.url}, "version"); r.code != 0 || !strings.Contains(r.out, "Server: Brokkr Broker API") {
		t.Fatalf("version: %+v", r)
	}
}
