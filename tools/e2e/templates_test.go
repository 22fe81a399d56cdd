package e2e

import (
	"encoding/json"

	"strings"
	"syscall"
	"testing"
	"time"
)

const webServiceTemplate = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ namespace }}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ service_name }}\n  namespace: {{ namespace }}\n  labels:\n    app: {{ service_name }}\n    managed-by: brokkr\nspec:\n  replicas: {{ replicas }}\n  selector:\n    matchLabels:\n      app: {{ service_name }}\n  template:\n    metadata:\n      labels:\n        app: {{ service_name }}\n    spec:\n      containers:\n      - name: {{ service_name }}\n        image: {{ image_repository }}:{{ image_tag }}\n        ports:\n        - containerPort: {{ container_port }}\n        resources:\n          requests:\n            cpu: {{ cpu_request }}\n            memory: {{ memory_request }}\n          limits:\n            cpu: {{ cpu_limit }}\n            memory: {{ memory_limit }}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ service_name }}\n  namespace: {{ namespace }}\nspec:\n  selector:\n    app: {{ service_name }}\n  ports:\n  - port: 80\n    targetPort: {{ container_port }}"

const webServiceSchema = `{"type": "object", "required": ["service_name", "namespace", "image_repository", "image_tag"], "properties": {"service_name": {"type": "string", "description": "Name of the service", "minLength": 1, "maxLength": 63}, "namespace": {"type": "string", "description": "Kubernetes namespace", "minLength": 1}, "image_repository": {"type": "string", "description": "Container image repository"}, "image_tag": {"type": "string", "description": "Container image tag", "default": "latest"}, "replicas": {"type": "integer", "description": "Number of replicas", "default": 2, "minimum": 1, "maximum": 20}, "container_port": {"type": "integer", "description": "Container port", "default": 8080}, "cpu_request": {"type": "string", "description": "CPU request", "default": "100m"}, "memory_request": {"type": "string", "description": "Memory request", "default": "128Mi"}, "cpu_limit": {"type": "string", "description": "CPU limit", "default": "500m"}, "memory_limit": {"type": "string", "description": "Memory limit", "default": "256Mi"}}}`

// The tutorial's Step 5 output, with the defaults (cpu_request,
// memory_request, cpu_limit) filled in from the schema.
const frontendRendered = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: frontend-app\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: frontend\n  namespace: frontend-app\n  labels:\n    app: frontend\n    managed-by: brokkr\nspec:\n  replicas: 3\n  selector:\n    matchLabels:\n      app: frontend\n  template:\n    metadata:\n      labels:\n        app: frontend\n    spec:\n      containers:\n      - name: frontend\n        image: myregistry.example.com/frontend:v2.1.0\n        ports:\n        - containerPort: 3000\n        resources:\n          requests:\n            cpu: 100m\n            memory: 128Mi\n          limits:\n            cpu: 500m\n            memory: 512Mi\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: frontend\n  namespace: frontend-app\nspec:\n  selector:\n    app: frontend\n  ports:\n  - port: 80\n    targetPort: 3000"

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestStandardizedDeploymentsTutorial follows "Tutorial: Standardized
// Deployments with Templates" through the real api, auth and templating
// processes.
func TestStandardizedDeploymentsTutorial(t *testing.T) {
	s := newStack(t)
	pak := s.adminPAK

	// Step 2.
	tpl := s.must(201, "POST", "/api/v1/templates", pak, jsonBody(map[string]string{
		"name": "web-service", "description": "Standard web service with configurable replicas, image, and resource limits",
		"template_content": webServiceTemplate, "parameters_schema": webServiceSchema}))
	tplID := tpl["id"].(string)
	if tpl["version"] != float64(1) || tpl["name"] != "web-service" || tpl["checksum"] == "" {
		t.Fatalf("template: %v", tpl)
	}

	// Step 4.
	nilGen := `"generator_id": "00000000-0000-0000-0000-000000000000"`
	stackID := s.must(201, "POST", "/api/v1/stacks", pak, `{"name": "frontend-app", "description": "Frontend web application", `+nilGen+`}`)["id"].(string)
	status, body := s.call("POST", "/api/v1/stacks/"+stackID+"/deployment-objects/from-template", pak, jsonBody(map[string]any{
		"template_id": tplID,
		"parameters": map[string]any{"service_name": "frontend", "namespace": "frontend-app",
			"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0", "replicas": 3,
			"container_port": 3000, "memory_limit": "512Mi"},
	}))
	var created []map[string]any
	if status != 200 || json.Unmarshal(body, &created) != nil || len(created) != 1 {
		t.Fatalf("instantiate: %d %s", status, body)
	}

	// Step 5: the rendered YAML, defaults applied.
	objs := s.list("GET", "/api/v1/stacks/"+stackID+"/deployment-objects", pak)
	doID := objs[0]["id"].(string)
	if doID != created[0]["id"] {
		t.Fatalf("stack's latest object %s, instantiated %s", doID, created[0]["id"])
	}
	do := s.must(200, "GET", "/api/v1/deployment-objects/"+doID, pak, "")
	if got := do["yaml_content"]; got != frontendRendered {
		t.Fatalf("rendered YAML differs.\ngot:\n%s\nwant:\n%s", got, frontendRendered)
	}

	// Step 6: the same template for another service.
	backend := s.must(201, "POST", "/api/v1/stacks", pak, `{"name": "backend-api", "description": "Backend API service", `+nilGen+`}`)["id"].(string)
	status, body = s.call("POST", "/api/v1/stacks/"+backend+"/deployment-objects/from-template", pak, jsonBody(map[string]any{
		"template_id": tplID,
		"parameters": map[string]any{"service_name": "api", "namespace": "backend-api",
			"image_repository": "myregistry.example.com/api", "image_tag": "v3.0.1", "replicas": 5,
			"container_port": 8080, "cpu_limit": "1000m", "memory_limit": "1Gi"},
	}))
	if status != 200 || !strings.Contains(string(body), `replicas: 5`) || !strings.Contains(string(body), "cpu: 1000m") {
		t.Fatalf("backend instantiate: %d %s", status, body)
	}

	// Step 7: version 2 under the same id.
	v2 := s.must(200, "PUT", "/api/v1/templates/"+tplID, pak, jsonBody(map[string]string{
		"description":       "Standard web service v2 - adds liveness probe",
		"template_content":  strings.Replace(webServiceTemplate, "        resources:", "        livenessProbe:\n          httpGet:\n            path: /healthz\n            port: {{ container_port }}\n        resources:", 1),
		"parameters_schema": webServiceSchema}))
	if v2["id"] != tplID || v2["version"] != float64(2) {
		t.Fatalf("update: %v", v2)
	}
	if vs := s.list("GET", "/api/v1/templates/"+tplID+"/versions", pak); len(vs) != 2 {
		t.Fatalf("versions: %v", vs)
	}
	params := map[string]any{"service_name": "x", "namespace": "x", "image_repository": "nginx", "image_tag": "1"}
	_, body = s.call("POST", "/api/v1/stacks/"+stackID+"/deployment-objects/from-template", pak, jsonBody(map[string]any{"template_id": tplID, "parameters": params}))
	if !strings.Contains(string(body), "livenessProbe") {
		t.Fatalf("latest version not used: %s", body)
	}
	_, body = s.call("POST", "/api/v1/stacks/"+stackID+"/deployment-objects/from-template", pak, jsonBody(map[string]any{"template_id": tplID, "version": 1, "parameters": params}))
	if strings.Contains(string(body), "livenessProbe") || !strings.Contains(string(body), "sequence_id") {
		t.Fatalf("version 1 not used: %s", body)
	}

	// Step 8: schema validation.
	status, body = s.call("POST", "/api/v1/stacks/"+stackID+"/deployment-objects/from-template", pak, jsonBody(map[string]any{
		"template_id": tplID, "parameters": map[string]any{"namespace": "test", "image_repository": "nginx", "image_tag": "latest"}}))
	if status != 400 || !strings.Contains(string(body), "Invalid parameters") || !strings.Contains(string(body), "service_name") {
		t.Fatalf("missing required: %d %s", status, body)
	}
	status, body = s.call("POST", "/api/v1/stacks/"+stackID+"/deployment-objects/from-template", pak, jsonBody(map[string]any{
		"template_id": tplID, "parameters": map[string]any{"service_name": "test", "namespace": "test", "image_repository": "nginx", "image_tag": "latest", "replicas": 100}}))
	if status != 400 || !strings.Contains(string(body), "/replicas") {
		t.Fatalf("replicas out of range: %d %s", status, body)
	}

	// Clean up.
	s.must(204, "DELETE", "/api/v1/stacks/"+stackID, pak, "")
	s.must(204, "DELETE", "/api/v1/stacks/"+backend, pak, "")
	s.must(204, "DELETE", "/api/v1/templates/"+tplID, pak, "")
}

// TestTemplatingDownIs503: with the templating service stopped, template
// routes answer a clear 503 quickly, not a 500 or a hang.
func TestTemplatingDownIs503(t *testing.T) {
	s := newStack(t)
	_ = s.templating.cmd.Process.Signal(syscall.SIGTERM)
	s.templating.exitCode(t, 15*time.Second)
	start := time.Now()
	status, body := s.call("POST", "/api/v1/templates", s.adminPAK, jsonBody(map[string]string{
		"name": "t", "template_content": "a: {{ b }}", "parameters_schema": `{"type": "object"}`}))
	if status != 503 || !strings.Contains(string(body), "templating service unavailable") {
		t.Fatalf("with templating down: %d %s", status, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
}

// TestTemplateScopingAndMatching checks generator scoping, the AND matching
// rule (422) and schema defaults through the real processes.
func TestTemplateScopingAndMatching(t *testing.T) {
	s := newStack(t)
	admin := s.adminPAK
	gen := func(name string) (string, string) {
		m := s.must(201, "POST", "/api/v1/generators", admin, jsonBody(map[string]string{"name": name}))
		return m["generator"].(map[string]any)["id"].(string), m["pak"].(string)
	}
	_, g1 := gen("ci-one")
	_, g2 := gen("ci-two")
	body := func(name string) string {
		return jsonBody(map[string]string{"name": name,
			"template_content":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: {{ namespace }}\n",
			"parameters_schema": `{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "namespace": {"type": "string", "default": "apps"}}}`})
	}
	system := s.must(201, "POST", "/api/v1/templates", admin, body("system-cm"))["id"].(string)
	foreign := s.must(201, "POST", "/api/v1/templates", "Bearer "+g2, body("g2-cm"))["id"].(string)
	s.must(201, "POST", "/api/v1/templates/"+system+"/labels", admin, `"env=prod"`)

	stack := s.must(201, "POST", "/api/v1/stacks", g1, `{"name": "g1-app"}`)["id"].(string)
	inst := func(pak, tpl string) (int, string) {
		st, b := s.call("POST", "/api/v1/stacks/"+stack+"/deployment-objects/from-template", pak,
			jsonBody(map[string]any{"template_id": tpl, "parameters": map[string]any{"name": "cfg"}}))
		return st, string(b)
	}
	if st, b := inst(g1, system); st != 422 || !strings.Contains(b, `"missing_labels":["env=prod"]`) {
		t.Fatalf("unlabelled stack: %d %s", st, b)
	}
	s.must(201, "POST", "/api/v1/stacks/"+stack+"/labels", g1, `"env=prod"`)
	if st, b := inst(g1, system); st != 200 || !strings.Contains(b, `namespace: apps`) {
		t.Fatalf("labelled stack: %d %s", st, b)
	}
	if st, b := inst(g1, foreign); st != 404 {
		t.Fatalf("another generator's template: %d %s", st, b)
	}
	if st, _ := s.call("GET", "/api/v1/templates/"+foreign, g1, ""); st != 403 {
		t.Fatalf("reading another generator's template: %d", st)
	}
}
