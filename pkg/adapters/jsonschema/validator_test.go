package jsonschema_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// The tutorial's "web-service" schema (seed, Step 2).
const webServiceSchema = `{"type": "object", "required": ["service_name", "namespace", "image_repository", "image_tag"], "properties": {"service_name": {"type": "string", "description": "Name of the service", "minLength": 1, "maxLength": 63}, "namespace": {"type": "string", "description": "Kubernetes namespace", "minLength": 1}, "image_repository": {"type": "string", "description": "Container image repository"}, "image_tag": {"type": "string", "description": "Container image tag", "default": "latest"}, "replicas": {"type": "integer", "description": "Number of replicas", "default": 2, "minimum": 1, "maximum": 20}, "container_port": {"type": "integer", "description": "Container port", "default": 8080}, "cpu_request": {"type": "string", "description": "CPU request", "default": "100m"}, "memory_request": {"type": "string", "description": "Memory request", "default": "128Mi"}, "cpu_limit": {"type": "string", "description": "CPU limit", "default": "500m"}, "memory_limit": {"type": "string", "description": "Memory limit", "default": "256Mi"}}}`

func strs(vs []template.Violation) []string { return template.ViolationStrings(vs) }

func TestDefaultsTopLevel(t *testing.T) {
	v := jsonschema.New()
	in := map[string]any{
		"service_name": "frontend", "namespace": "frontend-app",
		"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0",
		"replicas": 3, "container_port": 3000, "memory_limit": "512Mi",
	}
	out, viols, err := v.Validate(webServiceSchema, in)
	if err != nil || len(viols) > 0 {
		t.Fatalf("err=%v violations=%v", err, viols)
	}
	m := out.(map[string]any)
	want := map[string]any{"cpu_request": "100m", "memory_request": "128Mi", "cpu_limit": "500m", "memory_limit": "512Mi", "replicas": 3, "image_tag": "v2.1.0"}
	for k, w := range want {
		if !reflect.DeepEqual(m[k], w) {
			t.Errorf("%s = %#v, want %#v", k, m[k], w)
		}
	}
	if _, ok := in["cpu_request"]; ok {
		t.Error("the caller's parameters were modified")
	}
	// Integer defaults come back as int64, not json.Number.
	out, _, _ = v.Validate(webServiceSchema, map[string]any{"service_name": "a", "namespace": "b", "image_repository": "c", "image_tag": "d"})
	if got := out.(map[string]any)["replicas"]; got != int64(2) {
		t.Errorf("replicas default = %#v", got)
	}
}

func TestDefaultsNested(t *testing.T) {
	schema := `{
	  "type": "object",
	  "properties": {
	    "name": {"type": "string"},
	    "resources": {
	      "type": "object",
	      "properties": {
	        "cpu": {"type": "string", "default": "100m"},
	        "memory": {"type": "string", "default": "128Mi"},
	        "limits": {"type": "object", "properties": {"cpu": {"type": "string", "default": "1"}}}
	      }
	    },
	    "probe": {"type": "object", "properties": {"path": {"type": "string"}}},
	    "labels": {"type": "object", "default": {"app": "x"}},
	    "ports": {"type": "array", "default": [80]}
	  }
	}`
	v := jsonschema.New()
	cases := []struct {
		name string
		in   any
		want string
	}{
		{"absent object with child defaults is created", map[string]any{"name": "a"},
			`{"labels":{"app":"x"},"name":"a","ports":[80],"resources":{"cpu":"100m","limits":{"cpu":"1"},"memory":"128Mi"}}`},
		{"present object is completed", map[string]any{"resources": map[string]any{"cpu": "2"}},
			`{"labels":{"app":"x"},"ports":[80],"resources":{"cpu":"2","limits":{"cpu":"1"},"memory":"128Mi"}}`},
		{"explicit values win", map[string]any{"labels": map[string]any{}, "ports": []any{}, "resources": map[string]any{"limits": map[string]any{"cpu": "4"}}},
			`{"labels":{},"ports":[],"resources":{"cpu":"100m","limits":{"cpu":"4"},"memory":"128Mi"}}`},
		{"nil params become an object", nil,
			`{"labels":{"app":"x"},"ports":[80],"resources":{"cpu":"100m","limits":{"cpu":"1"},"memory":"128Mi"}}`},
		{"a non-object value is left alone", map[string]any{"resources": "oops"},
			`{"labels":{"app":"x"},"ports":[80],"resources":"oops"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := v.ApplyDefaults(schema, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(out)
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
	// A default that is an object is copied, not shared between calls.
	a, _ := v.ApplyDefaults(schema, map[string]any{})
	a.(map[string]any)["labels"].(map[string]any)["app"] = "changed"
	b, _ := v.ApplyDefaults(schema, map[string]any{})
	if b.(map[string]any)["labels"].(map[string]any)["app"] != "x" {
		t.Error("defaults are shared between calls")
	}
}

func TestViolations(t *testing.T) {
	v := jsonschema.New()
	cases := []struct {
		name   string
		schema string
		in     any
		want   []string
	}{
		{"required (TV4)", webServiceSchema, map[string]any{"namespace": "test", "image_repository": "nginx", "image_tag": "latest"},
			[]string{`"service_name" is a required property`}},
		{"maximum (TV5)", webServiceSchema, map[string]any{"service_name": "test", "namespace": "test", "image_repository": "nginx", "image_tag": "latest", "replicas": 100},
			[]string{"/replicas: 100 is greater than the maximum of 20"}},
		{"two errors (TV6)", `{"type":"object","properties":{"service_name":{"type":"string","minLength":1,"maxLength":63},"replicas":{"type":"integer","minimum":1,"maximum":20}}}`,
			map[string]any{"service_name": "", "replicas": 100},
			[]string{"/replicas: 100 is greater than the maximum of 20", `/service_name: "" is shorter than 1 character`}},
		{"minimum", `{"properties":{"replicas":{"minimum":1}}}`, map[string]any{"replicas": 0}, []string{"/replicas: 0 is less than the minimum of 1"}},
		{"pattern", `{"properties":{"storage_size":{"type":"string","pattern":"^[0-9]+[GMK]i$"}}}`, map[string]any{"storage_size": "100GB"},
			[]string{`/storage_size: "100GB" does not match "^[0-9]+[GMK]i$"`}},
		{"pattern accepts", `{"properties":{"storage_size":{"type":"string","pattern":"^[0-9]+[GMK]i$"}}}`, map[string]any{"storage_size": "10Gi"}, nil},
		{"minLength plural", `{"properties":{"password":{"type":"string","minLength":8}}}`, map[string]any{"password": "short"},
			[]string{`/password: "short" is shorter than 8 characters`}},
		{"maxLength", `{"properties":{"n":{"type":"string","maxLength":3}}}`, map[string]any{"n": "abcd"}, []string{`/n: "abcd" is longer than 3 characters`}},
		{"type", `{"properties":{"replicas":{"type":"integer"}}}`, map[string]any{"replicas": "abc"}, []string{`/replicas: "abc" is not of type "integer"`}},
		{"enum", `{"properties":{"env":{"enum":["dev","prod"]}}}`, map[string]any{"env": "x"}, []string{`/env: "x" is not one of ["dev","prod"]`}},
		{"several required", `{"required":["a","b"]}`, map[string]any{}, []string{`"a" is a required property`, `"b" is a required property`}},
		{"nested pointer", `{"properties":{"resources":{"properties":{"memory":{"type":"string","pattern":"^[0-9]+[GMK]i$"}}}}}`,
			map[string]any{"resources": map[string]any{"memory": "1GB"}}, []string{`/resources/memory: "1GB" does not match "^[0-9]+[GMK]i$"`}},
		{"array items", `{"properties":{"ports":{"type":"array","items":{"type":"integer","maximum":65535}}}}`,
			map[string]any{"ports": []any{80, 70000}}, []string{"/ports/1: 70000 is greater than the maximum of 65535"}},
		{"pointer escaping", `{"properties":{"a/b":{"type":"string"}}}`, map[string]any{"a/b": 1}, []string{`/a~1b: 1 is not of type "string"`}},
		{"additionalProperties", `{"additionalProperties":false,"properties":{"a":{}}}`, map[string]any{"a": 1, "x": 2}, []string{"Additional properties are not allowed ('x' was unexpected)"}},
		{"anyOf reported once", `{"properties":{"v":{"anyOf":[{"type":"string"},{"type":"integer"}]}}}`, map[string]any{"v": true},
			[]string{"/v: true is not valid under any of the given schemas"}},
		{"allOf flattened to leaves", `{"allOf":[{"required":["a"]},{"properties":{"b":{"minimum":5}}}]}`, map[string]any{"b": 1},
			[]string{`"a" is a required property`, "/b: 1 is less than the minimum of 5"}},
		{"$ref to $defs", `{"$defs":{"port":{"type":"integer","minimum":1}},"properties":{"p":{"$ref":"#/$defs/port"}}}`, map[string]any{"p": 0},
			[]string{"/p: 0 is less than the minimum of 1"}},
		{"format is asserted", `{"properties":{"e":{"type":"string","format":"email"}}}`, map[string]any{"e": "nope"}, []string{`/e: "nope" is not a "email"`}},
		{"empty schema accepts anything", `{}`, map[string]any{"anything": []any{1, "x"}}, nil},
		{"root type", `{"type":"object"}`, []any{1}, []string{`[1] is not of type "object"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, viols, err := v.Validate(tc.schema, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got := strs(viols)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestViolationPointers(t *testing.T) {
	_, viols, err := jsonschema.New().Validate(webServiceSchema, map[string]any{"service_name": "x", "namespace": "", "image_repository": "r", "image_tag": "t", "replicas": 0})
	if err != nil {
		t.Fatal(err)
	}
	want := []template.Violation{
		{Pointer: "/namespace", Message: `"" is shorter than 1 character`},
		{Pointer: "/replicas", Message: "0 is less than the minimum of 1"},
	}
	if !reflect.DeepEqual(viols, want) {
		t.Errorf("got %#v", viols)
	}
}

func TestInvalidSchemas(t *testing.T) {
	v := jsonschema.New()
	cases := []struct {
		schema string
		prefix string
		detail string
	}{
		{"not json", "Invalid JSON: ", "invalid character"},
		{`{"type": "object",}`, "Invalid JSON: ", "line 1"},
		{``, "Invalid JSON: ", ""},
		{`{"type": "intger"}`, "Invalid JSON Schema: ", `/type: "intger" is not valid under any of the given schemas`},
		{`{"properties": {"a": {"minimum": "1"}}}`, "Invalid JSON Schema: ", `/properties/a/minimum: "1" is not of type "number"`},
		{`{"properties": {"a": {"pattern": "("}}}`, "Invalid JSON Schema: ", `/properties/a/pattern: "(" is not a "regex"`},
		{`{"required": "a"}`, "Invalid JSON Schema: ", "/required"},
		{`{"$ref": "https://example.com/other.json"}`, "Invalid JSON Schema: ", "external schema references are not supported"},
		{`{"$ref": "file:///etc/passwd"}`, "Invalid JSON Schema: ", "external schema references are not supported"},
		{`{"items": [{"type": "string"}]}`, "Invalid JSON Schema: ", "/items"}, // draft-07 syntax under the 2020-12 default
	}
	for _, tc := range cases {
		err := v.ValidateSchema(tc.schema)
		if err == nil {
			t.Errorf("%s: accepted", tc.schema)
			continue
		}
		var se *jsonschema.SchemaError
		if !errors.As(err, &se) {
			t.Errorf("%s: %T", tc.schema, err)
		}
		if !strings.HasPrefix(err.Error(), tc.prefix) || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("%s: got %q, want prefix %q containing %q", tc.schema, err, tc.prefix, tc.detail)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: multi-line message %q", tc.schema, err)
		}
		// Validate and ApplyDefaults report the same error.
		if _, _, verr := v.Validate(tc.schema, map[string]any{}); verr == nil || verr.Error() != err.Error() {
			t.Errorf("%s: Validate error %v", tc.schema, verr)
		}
		if _, derr := v.ApplyDefaults(tc.schema, map[string]any{}); derr == nil {
			t.Errorf("%s: ApplyDefaults accepted", tc.schema)
		}
	}
}

func TestDrafts(t *testing.T) {
	v := jsonschema.New()
	draft7 := `{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": ["name"],
	  "properties": {"name": {"type": "string"}, "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
	  "replicas": {"type": "integer", "default": 1, "exclusiveMinimum": 0}},
	  "definitions": {"x": {"type": "string"}}}`
	if err := v.ValidateSchema(draft7); err != nil {
		t.Fatalf("draft-07 schema rejected: %v", err)
	}
	out, viols, err := v.Validate(draft7, map[string]any{"pair": []any{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`"name" is a required property`, `/pair/1: "b" is not of type "integer"`}
	if got := strs(viols); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	if out.(map[string]any)["replicas"] != int64(1) {
		t.Errorf("defaults not applied under draft-07: %v", out)
	}
	// draft 2020-12, explicit and default.
	for _, s := range []string{
		`{"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]}`,
		`{"prefixItems": [{"type": "string"}]}`,
	} {
		_, viols, err := v.Validate(s, []any{1})
		if err != nil {
			t.Fatal(err)
		}
		if got := strs(viols); !reflect.DeepEqual(got, []string{`/0: 1 is not of type "string"`}) {
			t.Errorf("%s: got %q", s, got)
		}
	}
	// The default draft is configurable: draft 7, like jsonschema-rs.
	v7 := jsonschema.New(jsonschema.WithDefaultDraft(jsonschema.Draft7))
	if err := v7.ValidateSchema(`{"items": [{"type": "string"}]}`); err != nil {
		t.Errorf("draft-07 default: %v", err)
	}
}

func TestJSONNumbersAndRawParams(t *testing.T) {
	v := jsonschema.New()
	var params any
	d := json.NewDecoder(strings.NewReader(`{"service_name":"a","namespace":"b","image_repository":"c","image_tag":"d","replicas":21}`))
	d.UseNumber()
	if err := d.Decode(&params); err != nil {
		t.Fatal(err)
	}
	_, viols, err := v.Validate(webServiceSchema, params)
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(viols); !reflect.DeepEqual(got, []string{"/replicas: 21 is greater than the maximum of 20"}) {
		t.Errorf("got %q", got)
	}
	_, viols, _ = v.Validate(webServiceSchema, json.RawMessage(`{"service_name":"a","namespace":"b","image_repository":"c","image_tag":"d","replicas":2.5}`))
	if got := strs(viols); !reflect.DeepEqual(got, []string{`/replicas: 2.5 is not of type "integer"`}) {
		t.Errorf("got %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	v := jsonschema.New()
	done := make(chan struct{})
	for i := 0; i < 8; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; j < 50; j++ {
				_, viols, err := v.Validate(webServiceSchema, map[string]any{"replicas": j})
				if err != nil || len(viols) == 0 {
					t.Error("unexpected result", err)
					return
				}
			}
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
}
