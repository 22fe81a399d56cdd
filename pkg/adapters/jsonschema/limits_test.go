package jsonschema

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Issue 10 items 5 and 8: schemas beyond the hard limits, and $ref cycles,
// are refused at once (ErrSchemaRefused → 422), before or right after
// compiling, and validation never panics.
func TestSchemaLimits(t *testing.T) {
	deep := strings.Repeat(`{"properties":{"a":`, 9000) + `{}` + strings.Repeat(`}}`, 9000)
	var fanout strings.Builder
	// 20 levels of anyOf with two refs to the next level: 2^20 paths.
	fanout.WriteString(`{"$ref":"#/$defs/l0","$defs":{`)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&fanout, `"l%d":{"anyOf":[{"$ref":"#/$defs/l%d"},{"$ref":"#/$defs/l%d"}]},`, i, i+1, i+1)
	}
	fanout.WriteString(`"l20":{"type":"string"}}}`)
	tests := []struct {
		name, schema, want string
	}{
		{"9,000 deep", deep, "nested deeper than 64"},
		{"too big", `{"description":"` + strings.Repeat("x", MaxSchemaBytes) + `"}`, "larger than"},
		{"self ref", `{"$ref":"#"}`, "$ref cycle"},
		{"mutual refs", `{"$defs":{"a":{"allOf":[{"$ref":"#/$defs/b"}]},"b":{"$ref":"#/$defs/a"}},"properties":{"x":{"$ref":"#/$defs/a"}}}`, "$ref cycle"},
		{"exponential fan-out", fanout.String(), "more than 10000 subschemas"},
	}
	v := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := v.ValidateSchema(tt.schema)
			if !errors.Is(err, template.ErrSchemaRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrSchemaRefused with %q", err, tt.want)
			}
			if _, _, err := v.Validate(tt.schema, map[string]any{"x": 1}); !errors.Is(err, template.ErrSchemaRefused) {
				t.Fatalf("Validate: %v", err)
			}
			t.Logf("refused in %v", time.Since(start))
		})
	}
	// Recursion that consumes the value (a tree) is fine.
	tree := `{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}}}`
	if err := v.ValidateSchema(tree); err != nil {
		t.Fatalf("recursive tree schema: %v", err)
	}
	_, viols, err := v.Validate(tree, map[string]any{"name": "a", "children": []any{map[string]any{"name": 1}}})
	if err != nil || len(viols) != 1 {
		t.Fatalf("tree validation: %v %v", viols, err)
	}
	// A schema just inside the depth limit compiles.
	ok := strings.Repeat(`{"items":`, 30) + `{}` + strings.Repeat(`}`, 30)
	if err := v.ValidateSchema(ok); err != nil {
		t.Fatalf("depth 31: %v", err)
	}
}

func FuzzValidateSchema(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"type":"integer","default":1}}}`,
		`{"$ref":"#"}`,
		`{"$defs":{"a":{"$ref":"#/$defs/a"}}}`,
		`{"anyOf":[{"$ref":"#/$defs/x"}],"$defs":{"x":{"not":{"$ref":"#"}}}}`,
		`{"items":{"$ref":"#"}}`,
		`[`, `{"$schema":"http://json-schema.org/draft-07/schema#","type":"string","format":"email"}`,
	} {
		f.Add(s, `{"a":1}`)
	}
	v := New()
	f.Fuzz(func(t *testing.T, schema, params string) {
		if err := v.ValidateSchema(schema); err != nil {
			return
		}
		// A schema that compiled must validate anything without panicking.
		_, _, _ = v.Validate(schema, map[string]any{"p": params})
		_, _, _ = v.Validate(schema, params)
	})
}
