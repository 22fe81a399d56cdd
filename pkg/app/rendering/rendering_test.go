package rendering_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// engine renders "{{ name }}"; sources naming "syntax" or "fail" fail the
// way the real engine reports those problems.
type engine struct{ got map[string]any }

func (e *engine) Validate(_ context.Context, src string) error {
	if strings.Contains(src, "syntax") {
		return &template.SyntaxError{Line: 1, Column: 2, Msg: "unexpected token"}
	}
	return nil
}

func (e *engine) Render(ctx context.Context, src string, params map[string]any) (string, error) {
	e.got = params
	if err := e.Validate(ctx, src); err != nil {
		return "", err
	}
	if strings.Contains(src, "fail") {
		return "", errors.New("undefined variable")
	}
	return strings.ReplaceAll(src, "{{ name }}", fmt.Sprint(params["name"])), nil
}

// schemas understands a few fixed schemas by name.
type schemas struct{}

func (schemas) ValidateSchema(schema string) error {
	switch schema {
	case "refused":
		return fmt.Errorf("too deep: %w", template.ErrSchemaRefused)
	case "not-json":
		return errors.New("Invalid JSON: expected value")
	case "panics":
		panic("boom")
	}
	return nil
}

func (schemas) ApplyDefaults(_ string, params any) (any, error) { return params, nil }

func (s schemas) Validate(schema string, params any) (any, []template.Violation, error) {
	if err := s.ValidateSchema(schema); err != nil {
		return nil, nil, err
	}
	p := params.(map[string]any)
	switch schema {
	case "defaults":
		if _, ok := p["name"]; !ok {
			return map[string]any{"name": "default"}, nil, nil
		}
	case "required":
		if _, ok := p["name"]; !ok {
			return p, []template.Violation{{Pointer: "", Message: `"name" is a required property`}}, nil
		}
	}
	return p, nil, nil
}

func TestValidation(t *testing.T) {
	svc := rendering.NewService(&engine{}, schemas{})
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"syntax error", svc.ValidateTemplate(ctx, "{{ syntax"), domain.ErrInvalid, "Invalid Tera syntax: line 1, column 2: unexpected token"},
		{"good template", svc.ValidateTemplate(ctx, "a: {{ name }}"), nil, ""},
		{"schema over the limits is 422", svc.ValidateSchema(ctx, "refused"), domain.ErrUnprocessable, ""},
		{"unusable schema is 400", svc.ValidateSchema(ctx, "not-json"), domain.ErrInvalid, "Invalid JSON: expected value"},
		{"a panicking validator is 422, not a crash", svc.ValidateSchema(ctx, "panics"), domain.ErrUnprocessable,
			"Invalid JSON Schema: the schema cannot be evaluated"},
		{"good schema", svc.ValidateSchema(ctx, "{}"), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.kind == nil {
				if tc.err != nil {
					t.Fatal(tc.err)
				}
				return
			}
			if !errors.Is(tc.err, tc.kind) {
				t.Fatalf("error %v, want %v", tc.err, tc.kind)
			}
			var de *domain.Error
			if tc.msg != "" && (!errors.As(tc.err, &de) || de.Msg != tc.msg) {
				t.Fatalf("message %v, want %q", tc.err, tc.msg)
			}
		})
	}
}

func TestRender(t *testing.T) {
	ctx := context.Background()
	e := &engine{}
	svc := rendering.NewService(e, schemas{})

	out, err := svc.Render(ctx, "name: {{ name }}", "defaults", nil)
	if err != nil || out != "name: default" || e.got["name"] != "default" {
		t.Fatalf("defaults: %q, %v (engine got %v)", out, err, e.got)
	}
	out, err = svc.Render(ctx, "name: {{ name }}", "defaults", map[string]any{"name": "x"})
	if err != nil || out != "name: x" {
		t.Fatalf("given: %q, %v", out, err)
	}

	_, err = svc.Render(ctx, "a", "required", map[string]any{})
	var de *domain.Error
	if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &de) || de.Msg != "Invalid parameters" {
		t.Fatalf("violations: %v", err)
	}
	if v, ok := de.Fields["validation_errors"].([]string); !ok || len(v) != 1 || v[0] != `"name" is a required property` {
		t.Fatalf("validation_errors %#v", de.Fields)
	}

	for _, tc := range []struct{ src, prefix string }{
		{"{{ syntax", "Template parse error: "},
		{"fail", "Template rendering failed: "},
	} {
		_, err := svc.Render(ctx, tc.src, "{}", nil)
		if !errors.Is(err, domain.ErrInvalid) || !errors.As(err, &de) || !strings.HasPrefix(de.Msg, tc.prefix) {
			t.Fatalf("%q: %v, want prefix %q", tc.src, err, tc.prefix)
		}
	}

	_, err = svc.Render(ctx, "a", "refused", nil)
	if !errors.Is(err, domain.ErrUnprocessable) {
		t.Fatalf("refused schema at render: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := svc.Render(cancelled, "a", "{}", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
}
