// Package gonja implements the template.Engine port on
// github.com/nikolalohinski/gonja/v2, adapted to Tera 1.20 semantics (the
// engine the original Brokkr uses) through gonja's extension points: our own
// filter, test, function and control-structure sets, a restricted loader and
// configuration, and an AST rewriting pass run after parsing. gonja itself is
// not modified. docs/templates.md describes the supported language and every
// known difference from Tera.
package gonja

import (
	"context"
	"errors"
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Engine renders Brokkr templates. It is safe for concurrent use.
type Engine struct {
	limits      template.Limits
	env         *exec.Environment
	filterNames map[string]struct{}
}

var _ template.Engine = (*Engine)(nil)

// New returns an engine enforcing limits (zero fields take the defaults).
func New(limits template.Limits) *Engine {
	e := &Engine{limits: limits.WithDefaults(), filterNames: map[string]struct{}{}}
	for name := range teraFilters {
		e.filterNames[name] = struct{}{}
	}
	globals := exec.EmptyContext()
	for name, fn := range functions {
		globals.Set(name, fn)
	}
	e.env = &exec.Environment{
		Context:           globals,
		Filters:           exec.NewFilterSet(filterFunctions()),
		Tests:             exec.NewTestSet(map[string]exec.TestFunction{}),
		ControlStructures: controlStructureSet(),
		Methods: exec.Methods{
			Bool:  exec.NewMethodSet[bool](map[string]exec.Method[bool]{}),
			Int:   exec.NewMethodSet[int](map[string]exec.Method[int]{}),
			Float: exec.NewMethodSet[float64](map[string]exec.Method[float64]{}),
			Str:   exec.NewMethodSet[string](map[string]exec.Method[string]{}),
			Dict:  exec.NewMethodSet[map[string]any](map[string]exec.Method[map[string]any]{}),
			List:  exec.NewMethodSet[[]any](map[string]exec.Method[[]any]{}),
		},
	}
	return e
}

// Limits returns the effective limits.
func (e *Engine) Limits() template.Limits { return e.limits }

// Validate parses source and checks every filter, test, function and tag
// name. It returns a *template.SyntaxError (with line and column when known)
// or a *template.LimitError (source too large or nested too deeply).
func (e *Engine) Validate(ctx context.Context, source string) (err error) {
	if ctx != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
	}
	_, err = e.compile(source)
	return err
}

// Render renders source with params. Each top-level key of params is a
// variable; values are JSON-like (see normalizeParams).
//
// The render runs on its own goroutine under a deadline of Limits.Timeout
// (or ctx's, if earlier). When the deadline passes, Render returns a
// *template.LimitError at once; the abandoned goroutine notices the deadline
// at its next loop iteration, filter call or output write and stops, so it
// cannot keep running or keep growing its output.
func (e *Engine) Render(ctx context.Context, source string, params map[string]any) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, e.limits.Timeout)
	defer cancel()

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := e.render(ctx, source, params)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", timeoutError(e.limits.Timeout)
		}
		return "", ctx.Err()
	}
}

func (e *Engine) render(ctx context.Context, source string, params map[string]any) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out = ""
			err = &template.RenderError{Msg: fmt.Sprintf("internal error while rendering: %v", r)}
		}
	}()
	c, err := e.compile(source)
	if err != nil {
		return "", err
	}
	st := &renderState{ctx: ctx, limits: e.limits, params: map[string]any{}}
	data := map[string]any{stateKey: st}
	for k, v := range params {
		nv := normalizeParams(v, 0)
		st.params[k] = nv
		data[varPrefix+k] = nv
	}
	root := e.env.Context.Inherit().Update(exec.NewContext(data))
	st.root = root
	w := &limitWriter{max: e.limits.MaxOutputBytes, st: st}
	env := &exec.Environment{
		Context:           root,
		Filters:           e.env.Filters,
		Tests:             e.env.Tests,
		ControlStructures: e.env.ControlStructures,
		Methods:           e.env.Methods,
	}
	r := exec.NewRenderer(env, w, c.cfg, c.loader, c.tpl)
	if err := r.Execute(); err != nil {
		err = classify(err, st)
		var re *template.RenderError
		if errors.As(err, &re) {
			re.Line = c.pos.originalLine(re.Line)
		}
		return "", err
	}
	if err := st.check(); err != nil {
		return "", err
	}
	return w.b.String(), nil
}
