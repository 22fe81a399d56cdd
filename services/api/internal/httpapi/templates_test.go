package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

const (
	cmTemplate = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: {{ namespace }}\ndata:\n  replicas: \"{{ replicas }}\"\n"
	cmSchema   = `{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "namespace": {"type": "string", "default": "default"}, "replicas": {"type": "integer", "default": 2, "maximum": 20}}}`
)

type tplResp struct {
	ID          string  `json:"id"`
	GeneratorID *string `json:"generator_id"`
	Version     int     `json:"version"`
	Checksum    string  `json:"checksum"`
}

func createTemplate(t *testing.T, e *apitest.Env, pak, name string) tplResp {
	t.Helper()
	var out tplResp
	e.Must(201, "POST", "/api/v1/templates", pak, map[string]string{
		"name": name, "template_content": cmTemplate, "parameters_schema": cmSchema}).JSON(t, &out)
	return out
}

func instantiate(e *apitest.Env, pak, stack, tpl string, params map[string]any, extra ...any) apitest.Response {
	body := map[string]any{"template_id": tpl, "parameters": params}
	if len(extra) == 2 {
		body[extra[0].(string)] = extra[1]
	}
	return e.Do("POST", "/api/v1/stacks/"+stack+"/deployment-objects/from-template", pak, body)
}

func TestTemplateDefaultsAndProvenance(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tpl := createTemplate(t, e, e.AdminPAK, "cm")
	if tpl.GeneratorID != nil || tpl.Version != 1 || len(tpl.Checksum) != 64 {
		t.Fatalf("template %+v", tpl)
	}
	stack := e.CreateStack(e.AdminPAK, "tpl-stack")
	r := instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "app"})
	if r.Status != 200 {
		t.Fatalf("instantiate: %d %s", r.Status, r.Body)
	}
	var objs []struct {
		ID          string `json:"id"`
		YAMLContent string `json:"yaml_content"`
	}
	r.JSON(t, &objs)
	if len(objs) != 1 || !strings.Contains(objs[0].YAMLContent, "namespace: default") || !strings.Contains(objs[0].YAMLContent, `replicas: "2"`) {
		t.Fatalf("defaults not applied: %+v", objs)
	}
	var prov struct {
		TemplateID string `db:"template_id"`
		Version    int    `db:"template_version"`
		Params     []byte `db:"template_parameters"`
	}
	if err := e.Store.DB().Get(&prov, `SELECT template_id, template_version, template_parameters FROM rendered_deployment_objects WHERE deployment_object_id = $1`, objs[0].ID); err != nil {
		t.Fatal(err)
	}
	var params map[string]any
	_ = json.Unmarshal(prov.Params, &params)
	if prov.TemplateID != tpl.ID || prov.Version != 1 || params["name"] != "app" {
		t.Fatalf("provenance %+v %s", prov, prov.Params)
	}
	// Invalid parameters: 400 with pointers, nothing stored.
	r = instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "app", "replicas": 100})
	if r.Status != 400 || !strings.Contains(string(r.Body), `"validation_errors"`) || !strings.Contains(string(r.Body), "/replicas") {
		t.Fatalf("invalid params: %d %s", r.Status, r.Body)
	}
	r = instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{})
	if r.Status != 400 || !strings.Contains(string(r.Body), "name") {
		t.Fatalf("missing required: %d %s", r.Status, r.Body)
	}
	var count int
	_ = e.Store.DB().Get(&count, `SELECT count(*) FROM deployment_objects WHERE stack_id = $1`, stack)
	if count != 1 {
		t.Fatalf("%d objects stored, want 1 (failed instantiations must store nothing)", count)
	}
}

func TestTemplateVersions(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tpl := createTemplate(t, e, e.AdminPAK, "versioned")
	e.Must(201, "POST", "/api/v1/templates/"+tpl.ID+"/labels", e.AdminPAK, `"env=prod"`)
	var v2 tplResp
	e.Must(200, "PUT", "/api/v1/templates/"+tpl.ID, e.AdminPAK, map[string]string{
		"template_content": strings.Replace(cmTemplate, "data:", "data:\n  v: \"2\"", 1), "parameters_schema": cmSchema}).JSON(t, &v2)
	if v2.ID != tpl.ID || v2.Version != 2 || v2.Checksum == tpl.Checksum {
		t.Fatalf("v2 %+v", v2)
	}
	var labels []map[string]any
	e.Must(200, "GET", "/api/v1/templates/"+tpl.ID+"/labels", e.AdminPAK, nil).JSON(t, &labels)
	if len(labels) != 1 {
		t.Fatalf("labels did not carry forward: %v", labels)
	}
	// POST with the same name adds version 3 under the same id.
	if again := createTemplate(t, e, e.AdminPAK, "versioned"); again.ID != tpl.ID || again.Version != 3 {
		t.Fatalf("create with an existing name: %+v", again)
	}
	var versions []map[string]any
	e.Must(200, "GET", "/api/v1/templates/"+tpl.ID+"/versions", e.AdminPAK, nil).JSON(t, &versions)
	if len(versions) != 3 || versions[0]["version"] != float64(1) {
		t.Fatalf("versions %v", versions)
	}
	stack := e.CreateStack(e.AdminPAK, "vstack")
	e.Must(201, "POST", "/api/v1/stacks/"+stack+"/labels", e.AdminPAK, `"env=prod"`)
	r := instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "a"}, "version", 1)
	if r.Status != 200 || strings.Contains(string(r.Body), `v: \"2\"`) {
		t.Fatalf("version 1: %d %s", r.Status, r.Body)
	}
	r = instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "a"}, "version", 9)
	if r.Status != 404 {
		t.Fatalf("unknown version: %d %s", r.Status, r.Body)
	}
	e.Must(204, "DELETE", "/api/v1/templates/"+tpl.ID, e.AdminPAK, nil)
	e.Must(404, "GET", "/api/v1/templates/"+tpl.ID, e.AdminPAK, nil)
}

func TestTemplateMatching422(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	tpl := createTemplate(t, e, e.AdminPAK, "guarded")
	e.Must(201, "POST", "/api/v1/templates/"+tpl.ID+"/labels", e.AdminPAK, `"env=prod"`)
	e.Must(201, "POST", "/api/v1/templates/"+tpl.ID+"/labels", e.AdminPAK, `"tier=1"`)
	e.Must(201, "POST", "/api/v1/templates/"+tpl.ID+"/annotations", e.AdminPAK, map[string]string{"key": "team", "value": "core"})
	stack := e.CreateStack(e.AdminPAK, "mstack")
	e.Must(201, "POST", "/api/v1/stacks/"+stack+"/labels", e.AdminPAK, `"env=prod"`)
	e.Must(201, "POST", "/api/v1/stacks/"+stack+"/labels", e.AdminPAK, `"extra"`)

	r := instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "x"})
	var body struct {
		Error              string   `json:"error"`
		MissingLabels      []string `json:"missing_labels"`
		MissingAnnotations []string `json:"missing_annotations"`
	}
	r.JSON(t, &body)
	if r.Status != 422 || body.Error != "Template labels do not match stack" ||
		len(body.MissingLabels) != 1 || body.MissingLabels[0] != "tier=1" ||
		len(body.MissingAnnotations) != 1 || body.MissingAnnotations[0] != "team=core" {
		t.Fatalf("mismatch: %d %s", r.Status, r.Body)
	}
	// Matching is checked before parameters: an invalid body still gets 422.
	if r := instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"replicas": "bad"}); r.Status != 422 {
		t.Fatalf("order: %d %s", r.Status, r.Body)
	}
	e.Must(201, "POST", "/api/v1/stacks/"+stack+"/labels", e.AdminPAK, `"tier=1"`)
	e.Must(201, "POST", "/api/v1/stacks/"+stack+"/annotations", e.AdminPAK, map[string]string{"key": "team", "value": "core"})
	if r := instantiate(e, e.AdminPAK, stack, tpl.ID, map[string]any{"name": "x"}); r.Status != 200 {
		t.Fatalf("after matching: %d %s", r.Status, r.Body)
	}
}

func TestTemplateGeneratorScoping(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	g1, g2 := e.CreateGenerator("tg1"), e.CreateGenerator("tg2")
	system := createTemplate(t, e, e.AdminPAK, "system")
	own := createTemplate(t, e, g1.PAK, "own")
	foreign := createTemplate(t, e, g2.PAK, "foreign")
	if own.GeneratorID == nil || *own.GeneratorID != g1.ID {
		t.Fatalf("generator template owner %+v", own)
	}
	var list []tplResp
	e.Must(200, "GET", "/api/v1/templates", g1.PAK, nil).JSON(t, &list)
	seen := map[string]bool{}
	for _, x := range list {
		seen[x.ID] = true
	}
	if !seen[system.ID] || !seen[own.ID] || seen[foreign.ID] || len(list) != 2 {
		t.Fatalf("g1 sees %v", list)
	}
	e.Must(200, "GET", "/api/v1/templates/"+system.ID, g1.PAK, nil)
	e.Must(403, "GET", "/api/v1/templates/"+foreign.ID, g1.PAK, nil)
	// System templates are read-only for generators; foreign ones untouchable.
	e.Must(403, "PUT", "/api/v1/templates/"+system.ID, g1.PAK, map[string]string{"template_content": cmTemplate, "parameters_schema": cmSchema})
	e.Must(403, "DELETE", "/api/v1/templates/"+foreign.ID, g1.PAK, nil)
	e.Must(403, "POST", "/api/v1/templates/"+system.ID+"/labels", g1.PAK, `"x"`)
	e.Must(204, "DELETE", "/api/v1/templates/"+own.ID, g1.PAK, nil)

	stack := e.CreateStack(g1.PAK, "g1-stack")
	if r := instantiate(e, g1.PAK, stack, system.ID, map[string]any{"name": "a"}); r.Status != 200 {
		t.Fatalf("g1 with a system template: %d %s", r.Status, r.Body)
	}
	if r := instantiate(e, g1.PAK, stack, foreign.ID, map[string]any{"name": "a"}); r.Status != 404 {
		t.Fatalf("g1 with g2's template: %d %s", r.Status, r.Body)
	}
	other := e.CreateStack(g2.PAK, "g2-stack")
	if r := instantiate(e, g1.PAK, other, system.ID, map[string]any{"name": "a"}); r.Status != 403 {
		t.Fatalf("g1 into g2's stack: %d %s", r.Status, r.Body)
	}
	// Agents have no business with templates.
	ag := e.CreateAgent("tpl-agent", "c")
	e.Must(403, "GET", "/api/v1/templates", ag.PAK, nil)
}

func TestTemplateValidationAtCreate(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	for _, tc := range []struct{ content, schema, want string }{
		{"a: {{ b | nosuch }}", `{"type": "object"}`, "Invalid Tera syntax: line 1, column"},
		{"{% if a %}x", `{"type": "object"}`, "Invalid Tera syntax"},
		{"a: 1", `{not json`, "Invalid JSON"},
		{"a: 1", `{"type": 5}`, "Invalid JSON Schema"},
		{"", `{"type": "object"}`, "template_content cannot be empty"},
	} {
		r := e.Do("POST", "/api/v1/templates", e.AdminPAK, map[string]string{"name": "bad", "template_content": tc.content, "parameters_schema": tc.schema})
		if r.Status != 400 || !strings.Contains(string(r.Body), tc.want) {
			t.Errorf("%q / %q: %d %s, want 400 %q", tc.content, tc.schema, r.Status, r.Body, tc.want)
		}
	}
	// The docs' aliases and a schema sent as an object are accepted.
	r := e.Do("POST", "/api/v1/templates", e.AdminPAK, map[string]any{"name": "alias", "template_yaml": "a: 1",
		"schema_json": map[string]any{"type": "object"}})
	if r.Status != 201 {
		t.Fatalf("aliases: %d %s", r.Status, r.Body)
	}
}
