package template_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

func TestMatch(t *testing.T) {
	a := func(k, v string) template.Annotation { return template.Annotation{Key: k, Value: v} }
	cases := []struct {
		name         string
		tl           []string
		ta           []template.Annotation
		sl           []string
		sa           []template.Annotation
		match        bool
		missingLabel []string
		missingAnn   []template.Annotation
	}{
		{"no labels matches anything", nil, nil, []string{"x"}, nil, true, []string{}, []template.Annotation{}},
		{"no labels, empty stack", nil, nil, nil, nil, true, []string{}, []template.Annotation{}},
		{"subset", []string{"env=prod"}, nil, []string{"env=prod", "team=platform"}, nil, true, []string{}, []template.Annotation{}},
		{"different value", []string{"env=prod"}, nil, []string{"env=staging"}, nil, false, []string{"env=prod"}, []template.Annotation{}},
		{"missing one", []string{"env=prod", "tier=1"}, nil, []string{"env=prod"}, nil, false, []string{"tier=1"}, []template.Annotation{}},
		{"colon labels match", []string{"env:production", "tier:frontend"}, nil, []string{"env:production", "tier:frontend", "region:us"}, nil, true, []string{}, []template.Annotation{}},
		{"colon labels missing", []string{"env:production", "tier:frontend"}, nil, []string{"env:production"}, nil, false, []string{"tier:frontend"}, []template.Annotation{}},
		{"wrong env", []string{"env:production", "tier:frontend"}, nil, []string{"env:staging", "tier:frontend"}, nil, false, []string{"env:production"}, []template.Annotation{}},
		{"colon and equals differ", []string{"env=prod"}, nil, []string{"env:prod"}, nil, false, []string{"env=prod"}, []template.Annotation{}},
		{"annotation match", nil, []template.Annotation{a("tier", "1")}, nil, []template.Annotation{a("tier", "1"), a("x", "y")}, true, []string{}, []template.Annotation{}},
		{"annotation value differs", nil, []template.Annotation{a("tier", "1")}, nil, []template.Annotation{a("tier", "2")}, false, []string{}, []template.Annotation{a("tier", "1")}},
		{"AND over both kinds", []string{"database=postgresql"}, []template.Annotation{a("tier", "1")}, []string{"database=postgresql"}, nil, false, []string{}, []template.Annotation{a("tier", "1")}},
		{"duplicates reported once", []string{"a", "a"}, nil, nil, nil, false, []string{"a"}, []template.Annotation{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := template.Match(tc.tl, tc.ta, tc.sl, tc.sa)
			if r.Matches != tc.match {
				t.Errorf("Matches = %v", r.Matches)
			}
			if !reflect.DeepEqual(r.MissingLabels, tc.missingLabel) {
				t.Errorf("MissingLabels = %#v", r.MissingLabels)
			}
			if !reflect.DeepEqual(r.MissingAnnotations, tc.missingAnn) {
				t.Errorf("MissingAnnotations = %#v", r.MissingAnnotations)
			}
		})
	}
	r := template.Match(nil, []template.Annotation{a("tier", "1")}, nil, nil)
	if got := r.MissingAnnotationStrings(); !reflect.DeepEqual(got, []string{"tier=1"}) {
		t.Errorf("MissingAnnotationStrings = %q", got)
	}
}

func TestViolationString(t *testing.T) {
	vs := []template.Violation{
		{Pointer: "", Message: `"service_name" is a required property`},
		{Pointer: "/replicas", Message: "100 is greater than the maximum of 20"},
	}
	want := []string{`"service_name" is a required property`, "/replicas: 100 is greater than the maximum of 20"}
	if got := template.ViolationStrings(vs); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	if got := template.JoinViolations(vs); got != want[0]+"; "+want[1] {
		t.Errorf("got %q", got)
	}
}

func TestErrors(t *testing.T) {
	if got := (&template.SyntaxError{Line: 3, Column: 7, Msg: `unknown filter "foo"`}).Error(); got != `line 3, column 7: unknown filter "foo"` {
		t.Errorf("got %q", got)
	}
	if got := (&template.SyntaxError{Line: 2, Msg: "x"}).Error(); got != "line 2: x" {
		t.Errorf("got %q", got)
	}
	if got := (&template.SyntaxError{Msg: "x"}).Error(); got != "x" {
		t.Errorf("got %q", got)
	}
	if got := (&template.RenderError{Msg: "Variable `x` not found in context while rendering 'template'"}).Error(); got != "Variable `x` not found in context while rendering 'template'" {
		t.Errorf("got %q", got)
	}
	var err error = &template.LimitError{Limit: template.LimitTimeout, Detail: "rendering took longer than 2s"}
	if !errors.Is(err, &template.LimitError{}) || !errors.Is(err, &template.LimitError{Limit: template.LimitTimeout}) || errors.Is(err, &template.LimitError{Limit: template.LimitOutputBytes}) {
		t.Error("LimitError.Is")
	}
	if got := err.Error(); got != "template limit exceeded (timeout): rendering took longer than 2s" {
		t.Errorf("got %q", got)
	}
}

func TestLimitsDefaults(t *testing.T) {
	d := template.DefaultLimits()
	if d.Timeout != 2*time.Second || d.MaxOutputBytes != 1<<20 || d.MaxLoopIterations != 10000 || d.MaxRecursionDepth != 64 || d.MaxSourceBytes != 256<<10 {
		t.Errorf("defaults %+v", d)
	}
	if got := (template.Limits{}).WithDefaults(); got != d {
		t.Errorf("zero limits %+v", got)
	}
	custom := template.Limits{Timeout: time.Second, MaxOutputBytes: 10, MaxLoopIterations: -1}
	got := custom.WithDefaults()
	if got.Timeout != time.Second || got.MaxOutputBytes != 10 || got.MaxLoopIterations != 10000 {
		t.Errorf("partial %+v", got)
	}
}
