package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

const quickStartNS = `apiVersion: v1
kind: Namespace
metadata:
  name: quick-start
`

const quickStartConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  namespace: quick-start
data:
  message: "%s"
`

const quickStartDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: quick-start-app
  namespace: quick-start
spec:
  replicas: 1
  selector:
    matchLabels:
      app: quick-start-app
  template:
    metadata:
      labels:
        app: quick-start-app
    spec:
      containers:
      - name: app
        image: busybox:1.36
        command: ["sh", "-c", "while true; do echo $MESSAGE; sleep 30; done"]
`

var (
	createdLine   = regexp.MustCompile(`^created stack "quick-start-app": first revision \(sequence (\d+)\)\n`)
	updatedLine   = regexp.MustCompile(`^updated stack "quick-start-app": new revision \(sequence (\d+)\)\n`)
	unchangedLine = "unchanged: stack \"quick-start-app\" already current\n"
)

// TestQuickStartWithCLI is the README quick start with brokkr alone: login,
// create an agent (and run it with the printed PAK), create a stack, target
// it, apply a folder with --wait, re-apply (unchanged), change it (updated),
// apply an object that cannot be applied (non-zero), read it back with
// get/describe/events, and delete the stack.
func TestQuickStartWithCLI(t *testing.T) {
	w := newWorld(t)

	// Login: verified against the broker, saved 0600, PAK never printed.
	r := w.brokkr([]string{"BROKKR_PAK=" + w.adminPAK}, "login", "--broker-url", w.url+"/api/v1", "--context", "dev")
	if r.code != 0 || !strings.Contains(r.out, "as admin") {
		t.Fatalf("login: %d %q %q", r.code, r.out, r.err)
	}
	fi, err := os.Stat(filepath.Join(w.home, ".brokkr", "config"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v mode %v", err, fi.Mode())
	}
	if out := w.ok("config", "get-contexts"); !strings.Contains(out, "dev") || strings.Contains(out, w.adminPAK) {
		t.Fatalf("get-contexts: %q", out)
	}

	w.createAgent("quick-start-agent", "local")
	testsupport.Eventually(t, 30*time.Second, "the agent's first heartbeat", func() bool {
		out := w.ok("get", "agents")
		return strings.Contains(out, "quick-start-agent") && strings.Contains(out, "ACTIVE") && !strings.Contains(out, "<never>")
	})

	// Step 1 and 2: a stack, targeted at the agent.
	if out := w.ok("create", "stack", "quick-start-app", "--description", "My first Brokkr deployment"); !strings.Contains(out, "stack/quick-start-app created") {
		t.Fatalf("create stack: %q", out)
	}
	if out := w.ok("target", "quick-start-agent", "quick-start-app"); !strings.Contains(out, "targets stack quick-start-app") {
		t.Fatalf("target: %q", out)
	}

	// Step 3: apply a folder, wait until the agent applied it.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "00-namespace.yaml"), quickStartNS)
	writeFile(t, filepath.Join(dir, "10-config.yml"), strings.Replace(quickStartConfig, "%s", "Hello from Brokkr!", 1))
	writeFile(t, filepath.Join(dir, "20-deployment.yaml"), quickStartDeployment)
	writeFile(t, filepath.Join(dir, "README.md"), "not a manifest")
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "quick-start-app", "--wait", "--timeout", "2m")
	if r.code != 0 || !createdLine.MatchString(r.out) || !strings.Contains(r.out, "quick-start-agent (local): applied") ||
		!strings.Contains(r.out, `applied: stack "quick-start-app"`) {
		t.Fatalf("first apply --wait: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	// Step 4: in the cluster.
	if out, err := kubeGet(t, w, "get", "configmap", "app-config", "-n", "quick-start", "-o", "jsonpath={.data.message}"); err != nil || out != "Hello from Brokkr!" {
		t.Fatalf("ConfigMap: %q %v", out, err)
	}
	if _, err := kubeGet(t, w, "get", "deployment", "quick-start-app", "-n", "quick-start"); err != nil {
		t.Fatalf("Deployment: %v", err)
	}

	// Idempotent: the same folder submits nothing.
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "quick-start-app")
	if r.code != 0 || r.out != unchangedLine {
		t.Fatalf("second apply: exit %d %q %q", r.code, r.out, r.err)
	}
	// unchanged --wait returns at once: the agent already applied it.
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "quick-start-app", "--wait", "--timeout", "30s")
	if r.code != 0 || !strings.HasPrefix(r.out, unchangedLine) {
		t.Fatalf("unchanged apply --wait: exit %d %q %q", r.code, r.out, r.err)
	}

	// A change is a new revision.
	writeFile(t, filepath.Join(dir, "10-config.yml"), strings.Replace(quickStartConfig, "%s", "updated by brokkr apply", 1))
	r = w.brokkr(nil, "apply", "-f", dir, "--stack", "quick-start-app", "--wait", "--timeout", "2m")
	m := updatedLine.FindStringSubmatch(r.out)
	if r.code != 0 || m == nil {
		t.Fatalf("changed apply: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	if out, _ := kubeGet(t, w, "get", "configmap", "app-config", "-n", "quick-start", "-o", "jsonpath={.data.message}"); out != "updated by brokkr apply" {
		t.Fatalf("ConfigMap after update: %q", out)
	}

	// get/describe read it back; -o json is the API's shape.
	var objs []map[string]any
	if err := json.Unmarshal([]byte(w.ok("get", "deployment-objects", "--stack", "quick-start-app", "-o", "json")), &objs); err != nil || len(objs) != 2 {
		t.Fatalf("get deployment-objects -o json: %v %v", err, objs)
	}
	for _, k := range []string{"id", "stack_id", "sequence_id", "yaml_content", "yaml_checksum", "is_deletion_marker", "submitted_at"} {
		if _, ok := objs[0][k]; !ok {
			t.Fatalf("deployment object JSON lacks %q: %v", k, objs[0])
		}
	}
	if d := w.ok("describe", "stack", "quick-start-app"); !strings.Contains(d, "quick-start-agent") || !strings.Contains(d, "SUCCESS") ||
		!strings.Contains(d, "sequence "+m[1]) {
		t.Fatalf("describe stack:\n%s", d)
	}
	if d := w.ok("describe", "agent", "quick-start-agent"); !strings.Contains(d, "quick-start-app") || !strings.Contains(d, "target") {
		t.Fatalf("describe agent:\n%s", d)
	}
	if ev := w.ok("events", "--stack", "quick-start-app"); strings.Count(ev, "SUCCESS") < 2 {
		t.Fatalf("events --stack:\n%s", ev)
	}

	// diagnose: the agent collects pod statuses, events and log tails.
	r = w.brokkr(nil, "diagnose", "quick-start-app", "--agent", "quick-start-agent", "--timeout", "90s")
	if r.code != 0 || !strings.Contains(r.out, "Pod statuses:") || !strings.Contains(r.out, "quick-start-app") {
		t.Fatalf("diagnose: exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}

	// An object the cluster cannot apply: --wait exits 2 naming the agent.
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "widget.yaml"), "apiVersion: example.brokkr.io/v1\nkind: Widget\nmetadata:\n  name: nope\n  namespace: quick-start\n")
	r = w.brokkr(nil, "apply", "-f", bad, "--stack", "quick-start-app", "--wait", "--timeout", "2m")
	if r.code != 2 || !updatedLine.MatchString(r.out) || !strings.Contains(r.err, "quick-start-agent (local)") || !strings.Contains(r.out, "failed") {
		t.Fatalf("failing apply --wait: exit %d (want 2)\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
	}
	// A bundle that is not Kubernetes YAML never reaches the broker: exit 1.
	writeFile(t, filepath.Join(bad, "widget.yaml"), "kind: Widget\n")
	r = w.brokkr(nil, "apply", "-f", bad, "--stack", "quick-start-app")
	if r.code != 1 || !strings.HasPrefix(r.err, "error: ") || !strings.Contains(r.err, "apiVersion") {
		t.Fatalf("invalid bundle: exit %d %q", r.code, r.err)
	}

	// Clean up: deleting asks; --yes does not; the agent removes what it applied.
	r = w.brokkr(nil, "delete", "stack", "quick-start-app")
	if r.code != 1 || !strings.Contains(r.err, "not deleted") {
		t.Fatalf("delete without --yes and no answer: %d %q", r.code, r.err)
	}
	w.ok("delete", "stack", "quick-start-app", "--yes")
	testsupport.Eventually(t, 90*time.Second, "the quick-start namespace to go", func() bool {
		out, err := kubeGet(t, w, "get", "namespace", "quick-start", "-o", "jsonpath={.status.phase}")
		return err != nil || out == "Terminating"
	})
}

// TestMultiClusterTutorialWithCLI follows the multi-cluster targeting
// tutorial with brokkr alone: two agents (each a running agent process),
// labels and an annotation, two labelled stacks, explicit targets, a
// deployment that reaches only staging, one that reaches only production,
// and a shared stack that --wait follows on both.
func TestMultiClusterTutorialWithCLI(t *testing.T) {
	w := newWorld(t)
	env := []string{"BROKKR_BROKER_URL=" + w.url, "BROKKR_PAK=" + w.adminPAK}
	run := func(args ...string) string {
		t.Helper()
		r := w.brokkr(env, args...)
		if r.code != 0 {
			t.Fatalf("brokkr %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
		return r.out
	}
	// The agents need the saved login too (createAgent uses w.ok).
	if r := w.brokkr(env, "login"); r.code != 0 {
		t.Fatalf("login: %q", r.err)
	}

	// Step 1.
	w.createAgent("staging-agent", "staging-cluster")
	w.createAgent("prod-agent", "prod-cluster")
	// Step 2.
	run("label", "agent", "staging-agent", "env:staging")
	run("label", "agent", "prod-agent", "env:production")
	run("annotate", "agent", "prod-agent", "region=us-east-1")
	var agents []map[string]any
	if err := json.Unmarshal([]byte(run("get", "agents", "-l", "env:staging", "-o", "json")), &agents); err != nil ||
		len(agents) != 1 || agents[0]["name"] != "staging-agent" {
		t.Fatalf("get agents -l env:staging: %v %v", err, agents)
	}
	// Step 3.
	run("create", "stack", "myapp-staging", "--description", "My app - staging environment", "--label", "env:staging")
	run("create", "stack", "myapp-production", "--description", "My app - production environment", "--label", "env:production")
	// Step 4.
	run("target", "staging-agent", "myapp-staging")
	run("target", "prod-agent", "myapp-production")

	// Step 5: staging only.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "app.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: myapp-staging\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: myapp\n  namespace: myapp-staging\ndata:\n  ENVIRONMENT: staging\n")
	out := run("apply", "-f", dir, "--stack", "myapp-staging", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "applied: stack \"myapp-staging\"") || !strings.Contains(out, "on 1 of 1 agents") || strings.Contains(out, "prod-agent") {
		t.Fatalf("staging apply --wait:\n%s", out)
	}
	if ev := run("get", "events", "--agent", "prod-agent"); strings.Contains(ev, "SUCCESS") {
		t.Fatalf("prod agent has events after the staging deploy:\n%s", ev)
	}
	// Step 6: production only.
	writeFile(t, filepath.Join(dir, "app.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: myapp-production\n")
	out = run("apply", "-f", dir, "--stack", "myapp-production", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "prod-agent (prod-cluster): applied") || strings.Contains(out, "staging-agent") {
		t.Fatalf("production apply --wait:\n%s", out)
	}

	// Untarget and target again: the CLI's inverse pair.
	if out := run("untarget", "prod-agent", "myapp-production"); !strings.Contains(out, "no longer targets") {
		t.Fatalf("untarget: %q", out)
	}
	run("target", "prod-agent", "myapp-production")

	// Steps 7 and 8: a shared stack reaches both; --wait follows both.
	run("create", "stack", "monitoring-shared", "--description", "Monitoring stack for all clusters")
	run("target", "staging-agent", "monitoring-shared")
	run("target", "prod-agent", "monitoring-shared")
	writeFile(t, filepath.Join(dir, "app.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: monitoring-shared\n")
	out = run("apply", "-f", dir, "--stack", "monitoring-shared", "--wait", "--timeout", "2m")
	if !strings.Contains(out, "on 2 of 2 agents") || !strings.Contains(out, "staging-agent (staging-cluster): applied") ||
		!strings.Contains(out, "prod-agent (prod-cluster): applied") {
		t.Fatalf("shared apply --wait:\n%s", out)
	}
	var stacks []map[string]any
	if err := json.Unmarshal([]byte(run("get", "stacks", "--agent", "prod-agent", "-o", "json")), &stacks); err != nil || len(stacks) != 2 {
		t.Fatalf("get stacks --agent prod-agent: %v %v", err, stacks)
	}

	// A template: checked locally, stored, instantiated into the staging
	// stack, followed to the agent.
	tpl := filepath.Join(t.TempDir(), "ns.yaml.tera")
	schema := filepath.Join(t.TempDir(), "ns.schema.json")
	// The stack's desired state becomes the rendered objects, so the
	// namespace stays in it.
	writeFile(t, tpl, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: myapp-staging\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: myapp-staging\ndata:\n  replicas: \"{{ replicas }}\"\n")
	writeFile(t, schema, `{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"replicas":{"type":"integer","default":2}}}`)
	if out := run("template", "validate", tpl, "--schema", schema, "--set", "name=web", "-o", "yaml"); !strings.Contains(out, "name: web") || !strings.Contains(out, `replicas: "2"`) {
		t.Fatalf("template validate:\n%s", out)
	}
	if r := w.brokkr(env, "template", "validate", tpl, "--schema", schema, "--set", "replicas=two"); r.code != 1 || !strings.Contains(r.err, "parameters do not match the schema") {
		t.Fatalf("template validate with bad parameters: %+v", r)
	}
	run("create", "template", "web-config", "--file", tpl, "--schema", schema)
	out = run("template", "instantiate", "web-config", "--stack", "myapp-staging", "--set", "name=from-template", "--set", "replicas=3", "--wait", "--timeout", "2m")
	if !strings.Contains(out, `instantiated template "web-config" into stack "myapp-staging"`) || !strings.Contains(out, "on 1 of 1 agents") {
		t.Fatalf("template instantiate --wait:\n%s", out)
	}
	if got, err := kubeGet(t, w, "get", "configmap", "from-template", "-n", "myapp-staging", "-o", "jsonpath={.data.replicas}"); err != nil || got != "3" {
		t.Fatalf("instantiated ConfigMap: %q %v", got, err)
	}

	// Clean up.
	for _, s := range []string{"myapp-staging", "myapp-production", "monitoring-shared"} {
		run("delete", "stack", s, "--yes")
	}
}
