package jsonschema

import (
	"fmt"
	"testing"
)

func TestExp(t *testing.T) {
	v := New()
	s := `{"type": "object", "required": ["service_name", "namespace", "image_repository", "image_tag"], "properties": {"service_name": {"type": "string", "minLength": 1, "maxLength": 63}, "namespace": {"type": "string", "minLength": 1}, "image_repository": {"type": "string"}, "image_tag": {"type": "string", "default": "latest"}, "replicas": {"type": "integer", "default": 2, "minimum": 1, "maximum": 20}, "storage": {"type":"string","pattern":"^[0-9]+[GMK]i$"}, "e": {"enum": ["a","b"]}, "res": {"type":"object","properties":{"cpu":{"type":"string","default":"100m"}}}}}`
	for _, p := range []any{
		map[string]any{"namespace": "test", "image_repository": "nginx", "image_tag": "latest"},
		map[string]any{"service_name": "", "namespace": "test", "image_repository": "nginx", "replicas": 100.0, "storage": "100GB", "e": "c"},
		map[string]any{"service_name": "x", "namespace": "test", "image_repository": "nginx", "replicas": "abc", "res": map[string]any{}},
		nil,
	} {
		out, viols, err := v.Validate(s, p)
		fmt.Printf("%v\n  %v\n  %v\n", out, viols, err)
	}
	for _, s := range []string{"not json", `{"type": "intger"}`, `{"type": "object", "properties": {"a": {"pattern": "("}}}`, `{"$ref": "http://example.com/x.json"}`, `{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "items": [{"type":"string"}]}`, `{"items": [{"type":"string"}]}`, `{}`, `{"minimum": "x"}`} {
		fmt.Printf("%s => %v\n", s, v.ValidateSchema(s))
	}
}
