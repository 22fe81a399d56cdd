package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// TestQuickStartSteps1to3 follows the quick start's API calls: create a
// stack, target it to an agent, deploy the YAML; then reads what the agent
// will receive.
func TestQuickStartSteps1to3(t *testing.T) {
	s := newStack(t)
	admin := "Bearer " + s.adminPAK

	ag := s.must(201, "POST", "/api/v1/agents", admin, `{"name": "quick-start-agent", "cluster_name": "local"}`)
	agentID := ag["agent"].(map[string]any)["id"].(string)
	if ag["initial_pak"] == nil || ag["initial_pak"] != ag["pak"] {
		t.Fatalf("create agent response: %v", ag)
	}

	// Step 1.
	st := s.must(201, "POST", "/api/v1/stacks", admin, `{
"name": "quick-start-app",
"description": "My first Brokkr deployment"
}`)
	stackID := st["id"].(string)
	if st["name"] != "quick-start-app" || st["description"] != "My first Brokkr deployment" {
		t.Fatalf("stack: %v", st)
	}

	// Step 2.
	ids := s.list("GET", "/api/v1/agents", admin)
	if len(ids) != 1 || ids[0]["id"] != agentID {
		t.Fatalf("agents: %v", ids)
	}
	s.must(201, "POST", "/api/v1/agents/"+agentID+"/targets", admin,
		fmt.Sprintf(`{"agent_id": %q, "stack_id": %q}`, agentID, stackID))

	// Step 3.
	yaml := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: quick-start\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n  namespace: quick-start\ndata:\n  message: \"Hello from Brokkr!\"\n  environment: development\n"
	body, _ := json.Marshal(map[string]any{"yaml_content": yaml, "is_deletion_marker": false})
	obj := s.must(201, "POST", "/api/v1/stacks/"+stackID+"/deployment-objects", admin, string(body))
	objs := s.list("GET", "/api/v1/stacks/"+stackID+"/deployment-objects", admin)
	if len(objs) != 1 || objs[0]["id"] != obj["id"] {
		t.Fatalf("deployment objects: %v", objs)
	}
	state := s.list("GET", "/api/v1/agents/"+agentID+"/target-state", "Bearer "+ag["initial_pak"].(string))
	if len(state) != 1 || state[0]["id"] != obj["id"] || state[0]["yaml_content"] != yaml {
		t.Fatalf("target state: %v", state)
	}
}

// TestMultiClusterTargetingTutorial sends the tutorial's calls as written:
// bare PAK headers, bare-string labels, {"stack_id"} target bodies, stacks
// with the nil generator_id, and the CLI with --cluster_name.
func TestMultiClusterTargetingTutorial(t *testing.T) {
	s := newStack(t)
	pak := s.adminPAK // the tutorial sends "Authorization: <your-admin-pak>"

	// Step 1, CLI form.
	out, err := s.cli("create", "agent", "--name", "cli-agent", "--cluster_name", "cli-cluster")
	if err != nil {
		t.Fatalf("auth create agent: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^Initial PAK: (brokkr_BR\S{6}_\S+)$`).FindStringSubmatch(out)
	if !strings.Contains(out, "Agent created successfully:") || m == nil {
		t.Fatalf("CLI output: %q", out)
	}
	if got := s.must(200, "POST", "/api/v1/auth/pak", m[1], ""); got["agent"] == nil {
		t.Fatalf("CLI PAK does not authenticate as an agent: %v", got)
	}

	// Step 1, API form.
	staging := s.must(201, "POST", "/api/v1/agents", pak, `{"name": "staging-agent", "cluster_name": "staging-cluster"}`)["agent"].(map[string]any)["id"].(string)
	prod := s.must(201, "POST", "/api/v1/agents", pak, `{"name": "prod-agent", "cluster_name": "prod-cluster"}`)["agent"].(map[string]any)["id"].(string)

	// Step 2.
	s.must(201, "POST", "/api/v1/agents/"+staging+"/labels", pak, `"env:staging"`)
	s.must(201, "POST", "/api/v1/agents/"+prod+"/labels", pak, `"env:production"`)
	s.must(201, "POST", "/api/v1/agents/"+prod+"/annotations", pak, `{"key": "region", "value": "us-east-1"}`)
	if l := s.list("GET", "/api/v1/agents/"+staging+"/labels", pak); len(l) != 1 || l[0]["label"] != "env:staging" {
		t.Fatalf("staging labels: %v", l)
	}

	// Step 3.
	nilGen := `"generator_id": "00000000-0000-0000-0000-000000000000"`
	stagingStack := s.must(201, "POST", "/api/v1/stacks", pak, `{"name": "myapp-staging", "description": "My app - staging environment", `+nilGen+`}`)["id"].(string)
	s.must(201, "POST", "/api/v1/stacks/"+stagingStack+"/labels", pak, `"env:staging"`)
	prodStack := s.must(201, "POST", "/api/v1/stacks", pak, `{"name": "myapp-production", "description": "My app - production environment", `+nilGen+`}`)["id"].(string)
	s.must(201, "POST", "/api/v1/stacks/"+prodStack+"/labels", pak, `"env:production"`)

	// Step 4.
	s.must(201, "POST", "/api/v1/agents/"+staging+"/targets", pak, fmt.Sprintf(`{"stack_id": %q}`, stagingStack))
	s.must(201, "POST", "/api/v1/agents/"+prod+"/targets", pak, fmt.Sprintf(`{"stack_id": %q}`, prodStack))

	// Steps 5 and 6: each agent receives only its environment's object.
	stagingObj := s.must(201, "POST", "/api/v1/stacks/"+stagingStack+"/deployment-objects", pak,
		`{"yaml_content": "apiVersion: v1\nkind: Namespace\nmetadata:\n name: myapp-staging\n"}`)["id"]
	prodObj := s.must(201, "POST", "/api/v1/stacks/"+prodStack+"/deployment-objects", pak,
		`{"yaml_content": "apiVersion: v1\nkind: Namespace\nmetadata:\n name: myapp-production\n"}`)["id"]
	if st := s.list("GET", "/api/v1/agents/"+staging+"/target-state", pak); len(st) != 1 || st[0]["id"] != stagingObj {
		t.Fatalf("staging target state: %v", st)
	}
	if st := s.list("GET", "/api/v1/agents/"+prod+"/target-state", pak); len(st) != 1 || st[0]["id"] != prodObj {
		t.Fatalf("production target state: %v", st)
	}

	// Steps 7 and 8: a shared stack targeted by both.
	shared := s.must(201, "POST", "/api/v1/stacks", pak, `{"name": "monitoring-shared", "description": "Monitoring stack for all clusters", `+nilGen+`}`)["id"].(string)
	s.must(201, "POST", "/api/v1/agents/"+staging+"/targets", pak, fmt.Sprintf(`{"stack_id": %q}`, shared))
	s.must(201, "POST", "/api/v1/agents/"+prod+"/targets", pak, fmt.Sprintf(`{"stack_id": %q}`, shared))
	for _, a := range []string{staging, prod} {
		if tg := s.list("GET", "/api/v1/agents/"+a+"/targets", pak); len(tg) != 2 {
			t.Fatalf("agent %s targets: %v, want 2", a, tg)
		}
	}

	// Clean up.
	for _, id := range []string{stagingStack, prodStack, shared} {
		s.must(204, "DELETE", "/api/v1/stacks/"+id, pak, "")
	}
	for _, id := range []string{staging, prod} {
		s.must(204, "DELETE", "/api/v1/agents/"+id, pak, "")
	}
	if st, _ := s.call("GET", "/api/v1/stacks/"+shared, pak, ""); st != 404 {
		t.Fatalf("deleted stack: %d, want 404", st)
	}
}

// cli runs the auth binary's CLI with the stack's configuration.
func (s *stack) cli(args ...string) (string, error) {
	cmd := exec.Command(binDir+"/auth", args...)
	cmd.Env = s.env
	out, err := cmd.Output()
	return string(out), err
}

// TestLifecycle checks the documented exit codes, the admin PAK printed
// once, the auth-service-down answer and a graceful SIGTERM.
func TestLifecycle(t *testing.T) {
	s := newStack(t)

	// stdout carries the one line, the log stream (stderr) never the PAK.
	if got := s.auth.stdoutText(); got != "Admin PAK: "+s.adminPAK+"\n" {
		t.Fatalf("auth's stdout on first start is %d bytes, want only the admin PAK line", len(got))
	}
	if strings.Contains(s.auth.output(), s.adminPAK) {
		t.Fatal("auth logged the admin PAK")
	}
	// A second auth replica on the same database does not bootstrap again.
	second := start(t, replace(s.env, "BROKKR__AUTH__ADDR=", fmt.Sprintf("BROKKR__AUTH__ADDR=127.0.0.1:%d", testsupport.FreePort(t))), "auth", "serve")
	time.Sleep(2 * time.Second)
	if second.stdoutText() != "" || strings.Contains(second.output(), "Admin PAK:") {
		t.Fatalf("second start printed an admin PAK:\n%s", second.stdoutText())
	}

	// Bad configuration → 64, naming the key.
	bad := start(t, append(append([]string{}, s.env...), "BROKKR__LOG__FORMAT=xml"), "api", "serve")
	if code := bad.exitCode(t, 10*time.Second); code != 64 {
		t.Fatalf("bad config exit code %d, want 64", code)
	}
	if !strings.Contains(bad.output(), "BROKKR__LOG__FORMAT") {
		t.Fatalf("bad config message does not name the key:\n%s", bad.output())
	}

	// The auth service down: a clear 503, not a 500 or a hang.
	_ = s.auth.cmd.Process.Signal(syscall.SIGTERM)
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	s.auth.exitCode(t, 15*time.Second)
	second.exitCode(t, 15*time.Second)
	start := time.Now()
	status, body := s.call("GET", "/api/v1/agents", "Bearer brokkr_BRnotused_"+strings.Repeat("x", 32), "")
	if status != 503 || !strings.Contains(string(body), "error") {
		t.Fatalf("with auth down: %d %s, want 503 JSON", status, body)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("with auth down the api took %v", time.Since(start))
	}

	// SIGTERM drains and exits 143.
	_ = s.api.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.api.exitCode(t, 30*time.Second); code != 143 {
		t.Fatalf("api exit code after SIGTERM %d, want 143\n%s", code, s.api.output())
	}
}

func replace(env []string, prefix, with string) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return append(out, with)
}
