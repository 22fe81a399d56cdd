package gonja_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var le *template.LimitError
	if !errors.As(err, &le) {
		t.Fatalf("got %v (%T), want LimitError %s", err, err, limit)
	}
	if le.Limit != limit {
		t.Fatalf("got limit %q (%v), want %q", le.Limit, le, limit)
	}
	if !errors.Is(err, &template.LimitError{Limit: limit}) || !errors.Is(err, &template.LimitError{}) {
		t.Fatalf("errors.Is does not match %v", err)
	}
}

func TestLimits(t *testing.T) {
	e := gonja.New(template.Limits{})
	big := strings.Repeat("x", 1024)
	doubling := `{% set s = "aaaaaaaaaa" %}` + strings.Repeat(`{% set s = s ~ s %}`, 40) + `{{ s | length }}`
	cases := []struct {
		name  string
		src   string
		limit string
	}{
		{"huge range", `{% for i in range(end=100000000000) %}x{% endfor %}`, template.LimitLoopIterations},
		{"nested loops share one budget", `{% for i in range(end=10000) %}{% for j in range(end=10000) %}{% endfor %}{% endfor %}`, template.LimitLoopIterations},
		{"output size", `{% for i in range(end=5000) %}{{ big }}{% endfor %}`, template.LimitOutputBytes},
		{"string doubling in memory", doubling, template.LimitOutputBytes},
		{"replace amplification", `{% set s = big ~ big %}{{ s | replace(from="x", to=big) | length }}`, template.LimitOutputBytes},
		{"list doubling", `{% set_global l = [1] %}{% for i in range(end=100) %}{% set_global l = l | concat(with=l) %}{% endfor %}`, template.LimitLoopIterations},
		{"split into too many items", `{{ (big ~ big ~ big ~ big ~ big ~ big ~ big ~ big ~ big ~ big ~ big) | split(pat="") | length }}`, template.LimitLoopIterations},
		{"deep parentheses", "{{ " + strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + " }}", template.LimitRecursionDepth},
		{"deep blocks", strings.Repeat("{% if true %}", 100) + strings.Repeat("{% endif %}", 100), template.LimitRecursionDepth},
		{"long and chain", "{{ " + strings.Repeat("true and ", 100) + "true }}", template.LimitRecursionDepth},
		{"source size", strings.Repeat("a", 300<<10), template.LimitSourceBytes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := e.Render(context.Background(), tc.src, map[string]any{"big": big})
			wantLimit(t, err, tc.limit)
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("took %v", d)
			}
		})
	}
	// Attribute chains are flattened into one lookup: no depth limit needed.
	if _, err := e.Render(context.Background(), "{{ a"+strings.Repeat(".b", 5000)+" | default(value=1) }}", nil); err != nil {
		t.Errorf("long attribute chain: %v", err)
	}
	// Validate enforces the static limits too.
	wantLimit(t, e.Validate(context.Background(), strings.Repeat("a", 300<<10)), template.LimitSourceBytes)
	wantLimit(t, e.Validate(context.Background(), "{{ "+strings.Repeat("[", 100)+strings.Repeat("]", 100)+" }}"), template.LimitRecursionDepth)
}

func TestLimitsAreConfigurable(t *testing.T) {
	e := gonja.New(template.Limits{MaxLoopIterations: 3, MaxOutputBytes: 10, MaxRecursionDepth: 4, MaxSourceBytes: 100})
	if _, err := e.Render(context.Background(), `{% for i in [1,2,3] %}{% endfor %}`, nil); err != nil {
		t.Fatalf("3 iterations: %v", err)
	}
	_, err := e.Render(context.Background(), `{% for i in [1,2,3,4] %}{% endfor %}`, nil)
	wantLimit(t, err, template.LimitLoopIterations)
	if out, err := e.Render(context.Background(), `0123456789`, nil); err != nil || out != "0123456789" {
		t.Fatalf("10 bytes: %q %v", out, err)
	}
	_, err = e.Render(context.Background(), `0123456789!`, nil)
	wantLimit(t, err, template.LimitOutputBytes)
	_, err = e.Render(context.Background(), `{{ (((((1))))) }}`, nil)
	wantLimit(t, err, template.LimitRecursionDepth)
	_, err = e.Render(context.Background(), strings.Repeat("a", 101), nil)
	wantLimit(t, err, template.LimitSourceBytes)
	if got := e.Limits(); got.Timeout != template.DefaultTimeout {
		t.Errorf("zero timeout should default, got %v", got.Timeout)
	}
}

// A runaway template is abandoned at the deadline, and its goroutine stops
// shortly after instead of running on.
func TestTimeout(t *testing.T) {
	e := gonja.New(template.Limits{Timeout: 50 * time.Millisecond, MaxLoopIterations: 1 << 40, MaxOutputBytes: 1 << 30})
	src := `{% for i in range(end=100000) %}{% for j in range(end=100000) %}{{ i ~ j }}{% endfor %}{% endfor %}`
	before := runtime.NumGoroutine()
	start := time.Now()
	_, err := e.Render(context.Background(), src, nil)
	elapsed := time.Since(start)
	wantLimit(t, err, template.LimitTimeout)
	if elapsed > time.Second {
		t.Fatalf("Render returned after %v", elapsed)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("render goroutine still running: %d goroutines, had %d", n, before)
	}
}

func TestCallerContextCancellation(t *testing.T) {
	e := gonja.New(template.Limits{MaxLoopIterations: 1 << 40, MaxOutputBytes: 1 << 30})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := e.Render(ctx, `{% for i in range(end=1000000) %}{% for j in range(end=1000000) %}{% endfor %}{% endfor %}`, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

// Parsing the largest allowed source is fast.
// largeSource is a 250 KiB template of one repeated line with a filter
// chain: the size the render limits allow.
func largeSource() string {
	var b strings.Builder
	for b.Len() < 250<<10 {
		b.WriteString("key: {{ value | default(value=\"x\") | upper }}\n")
	}
	return b.String()
}

// TestLargeSourceRenders: a template at the size limit validates and
// renders whole. How fast is BenchmarkLargeSource's business
// (docs/benchmarks.md), not a timed assertion here.
func TestLargeSourceRenders(t *testing.T) {
	e := gonja.New(template.Limits{})
	src := largeSource()
	if err := e.Validate(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	out, err := e.Render(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "key: X\n") || strings.Count(out, "key: X\n") != strings.Count(src, "key: ") {
		t.Fatalf("got %d lines starting %q", strings.Count(out, "\n"), out[:20])
	}
}

// BenchmarkLargeSource validates and renders the 250 KiB template.
func BenchmarkLargeSource(b *testing.B) {
	e := gonja.New(template.Limits{})
	src := largeSource()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Validate(context.Background(), src); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Render(context.Background(), src, nil); err != nil {
			b.Fatal(err)
		}
	}
}
