package gonja_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// FuzzRender checks, for arbitrary sources and parameters, that Validate and
// Render never panic, always return one of the domain errors, respect the
// output limit and return within the deadline, and that a source Validate
// accepts never fails Render with a syntax error.
func FuzzRender(f *testing.F) {
	params := `{"name":"web","replicas":3,"enable_hpa":true,"containers":[{"name":"a","image":"img:1","ports":[80,443]}],"env_vars":{"B":"2","A":"1"},"config":{"host":"localhost"},"big":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","n":null}`
	seeds := []string{
		webServiceV1, webServiceV2, nginxDeployment, postgresqlDatabase, referenceWebService,
		"Hello, {{ name }}!",
		"Hello, {{ name !",
		"{% if true %} hello",
		"{% if enable_hpa %}---\nname: {{ name }}-hpa\nmin: {{ min_replicas | default(value=1) }}{% endif %}",
		"{% for c in containers %}- {{ c.name }}{% for p in c.ports %}{{ p }}{% endfor %}{% endfor %}",
		"{% for k, v in env_vars %}{{ k }}={{ v }}{% endfor %}",
		"{{ name | lower | slugify | upper | replace(from=\"W\", to=\"w\") }}",
		"{{ replicas * 2 + 1 // 3 % 2 ** 2 - 1 / 7 }}",
		"{{ big ~ big ~ big }}{% set s = big %}{% for i in range(end=20) %}{% set_global s = s ~ s %}{% endfor %}",
		"{% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ i }}{% endfor %}{% endfor %}",
		"{{ [1, 2, {\"a\": [3]}] | json_encode(pretty=true) }}{{ config | get(key=\"host\") }}",
		"{%- raw -%} {{ x }} {%- endraw -%}{# c #}{% filter upper %}{{ name }}{% endfilter %}",
		"{{ x is defined }}{{ n is none }}{{ 3 in [1,2,3] }}{{ not nope }}{% if nope.x %}{% endif %}",
		"{{ ((((((((1)))))))) }}{{ {\"a\": 1}.a }}{{ [1,2,3].1 }}{{ \"abc\"[0] }}",
		"{% for x in [1,2,3] %}{% if loop.last %}{% break %}{% endif %}{% continue %}{% endfor %}",
		"{{ throw(message=\"boom\") }}{{ range(1, 5, 2) | join(\"-\") }}",
		"{{ '\\u0000' }}{{ \"\\\"\" }}{{ 1e308 * 10 }}{{ -9223372036854775807 - 2 }}",
		"{% set %}{% endset %}{% raw %}{% endfor %}{{",
		"{{ a.b() }}{{ x[1:2] }}{% include 'x' %}{% macro m() %}{% endmacro %}",
		"{% if name and\n  replicas > 1 %}{{ `x` ~ \"}}\" }}{% endif %}{{ {\"a\": {\"b\": 1}}.a.b }}{# $ #}{{ x $ }}",
	}
	for _, s := range seeds {
		f.Add(s, params)
		f.Add(s, "{}")
	}
	limits := template.Limits{
		Timeout:           300 * time.Millisecond,
		MaxOutputBytes:    64 << 10,
		MaxLoopIterations: 2000,
		MaxRecursionDepth: 32,
		MaxSourceBytes:    16 << 10,
	}
	e := gonja.New(limits)
	f.Fuzz(func(t *testing.T, src string, paramsJSON string) {
		var p map[string]any
		if err := json.Unmarshal([]byte(paramsJSON), &p); err != nil {
			p = nil
		}
		verr := e.Validate(context.Background(), src)
		checkDomainError(t, verr)
		start := time.Now()
		out, err := e.Render(context.Background(), src, p)
		elapsed := time.Since(start)
		checkDomainError(t, err)
		if len(out) > limits.MaxOutputBytes {
			t.Fatalf("output of %d bytes exceeds the limit", len(out))
		}
		// Generous slack: the fuzzer runs several workers on few cores.
		if elapsed > limits.Timeout+3*time.Second {
			t.Fatalf("Render took %v", elapsed)
		}
		var se *template.SyntaxError
		if verr == nil && errors.As(err, &se) {
			t.Fatalf("Validate accepted %q but Render reports a syntax error: %v", src, err)
		}
		if verr != nil && err == nil {
			t.Fatalf("Validate rejected %q (%v) but Render succeeded", src, verr)
		}
	})
}

func checkDomainError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var (
		se *template.SyntaxError
		re *template.RenderError
		le *template.LimitError
	)
	switch {
	case errors.As(err, &se), errors.As(err, &le):
	case errors.As(err, &re):
		if strings.HasPrefix(re.Msg, "internal error") {
			t.Fatalf("recovered panic: %v", err)
		}
	default:
		t.Fatalf("unexpected error type %T: %v", err, err)
	}
}
