package gonja

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"

	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Context keys. User variables live under varPrefix+name so that they never
// collide with gonja's own context entries (gonja sets "self") nor with
// functions; stateKey cannot be produced by the lexer.
const (
	varPrefix = "v:"
	stateKey  = "\x00brokkr-state"
)

// renderState is the per-render bookkeeping shared by our filters and
// control structures. One render runs on one goroutine, so no locking.
type renderState struct {
	ctx        context.Context
	limits     template.Limits
	iterations int
	root       *exec.Context
	params     map[string]any
	// limit is the first limit hit; once set, every later check fails with
	// it, so a limit can never be swallowed by a boolean context.
	limit *template.LimitError
	// recorded maps the message gonja gives an error returned by one of our
	// filters or functions ("invalid call to filter 'x': <msg>") back to the
	// typed error: gonja flattens such errors with fmt.Errorf("%s").
	recorded map[string]error
}

const maxRecorded = 4096

// fail records err as returned by the filter (kind "filter") or function
// (kind "function") name, and returns it as a gonja error value.
func (s *renderState) fail(kind, name string, err error) *exec.Value {
	if s != nil {
		var le *template.LimitError
		if errors.As(err, &le) && s.limit == nil {
			s.limit = le
		}
		if s.recorded == nil {
			s.recorded = map[string]error{}
		}
		if len(s.recorded) < maxRecorded {
			s.recorded["invalid call to "+kind+" '"+name+"': "+err.Error()] = err
		}
	}
	return exec.AsValue(err)
}

func (s *renderState) setLimit(err error) error {
	var le *template.LimitError
	if s != nil && errors.As(err, &le) && s.limit == nil {
		s.limit = le
	}
	return err
}

func stateFrom(ctx *exec.Context) *renderState {
	if ctx == nil {
		return nil
	}
	v, ok := ctx.Get(stateKey)
	if !ok {
		return nil
	}
	st, _ := v.(*renderState)
	return st
}

// check reports the deadline as a LimitError.
func (s *renderState) check() error {
	if s == nil {
		return nil
	}
	if s.limit != nil {
		return s.limit
	}
	if s.ctx == nil {
		return nil
	}
	select {
	case <-s.ctx.Done():
		return s.setLimit(timeoutError(s.limits.Timeout))
	default:
		return nil
	}
}

// iterate counts one loop iteration against MaxLoopIterations.
func (s *renderState) iterate() error {
	if err := s.check(); err != nil {
		return err
	}
	s.iterations++
	if s.iterations > s.limits.MaxLoopIterations {
		return s.setLimit(&template.LimitError{
			Limit:  template.LimitLoopIterations,
			Detail: fmt.Sprintf("more than %d loop iterations", s.limits.MaxLoopIterations),
		})
	}
	return nil
}

// checkLen refuses generated lists longer than MaxLoopIterations.
func (s *renderState) checkLen(n int) error {
	max := template.DefaultMaxLoopIterations
	if s != nil {
		max = s.limits.MaxLoopIterations
	}
	if n > max {
		return s.setLimit(&template.LimitError{
			Limit:  template.LimitLoopIterations,
			Detail: fmt.Sprintf("a generated list of %d items exceeds the limit of %d", n, max),
		})
	}
	return nil
}

func (s *renderState) maxBytes() int {
	if s == nil {
		return template.DefaultMaxOutputBytes
	}
	return s.limits.MaxOutputBytes
}

// checkSize refuses strings larger than MaxOutputBytes.
func (s *renderState) checkSize(n int) error {
	if n > s.maxBytes() {
		return s.setLimit(errValueTooLarge(s.maxBytes()))
	}
	return nil
}

func timeoutError(d interface{ String() string }) error {
	return &template.LimitError{Limit: template.LimitTimeout, Detail: "rendering took longer than " + d.String()}
}

func errValueTooLarge(max int) error {
	return &template.LimitError{
		Limit:  template.LimitOutputBytes,
		Detail: fmt.Sprintf("output or a value built while rendering exceeds %d bytes", max),
	}
}

// limitWriter is the render output: it caps the size and aborts the render
// once the deadline has passed.
type limitWriter struct {
	b   strings.Builder
	max int
	st  *renderState
}

func (w *limitWriter) WriteString(s string) (int, error) {
	if err := w.st.check(); err != nil {
		return 0, err
	}
	if w.b.Len()+len(s) > w.max {
		return 0, w.st.setLimit(errValueTooLarge(w.max))
	}
	return w.b.WriteString(s)
}

func (w *limitWriter) Write(p []byte) (int, error) { return w.WriteString(string(p)) }

// Error values produced while rendering. They travel inside gonja values
// (exec.AsValue(err)) and gonja wraps them on the way up; classify digs them
// out again.

// undefinedError is Tera's "variable not found" error. A lookup yields an
// undefinedValue (not an error) so that `default`, `is defined` and boolean
// contexts can see it; every other consumer turns it into this error.
type undefinedError struct{ path string }

func (e *undefinedError) Error() string {
	return "Variable `" + e.path + "` not found in context while rendering 'template'"
}

// evalError is any other render failure, with a Tera-like message.
type evalError struct{ msg string }

func (e *evalError) Error() string { return e.msg }

func errorf(format string, args ...any) error { return &evalError{msg: fmt.Sprintf(format, args...)} }

// undefinedValue is the result of looking up a missing variable, key or
// index. It is a plain value for gonja, so it flows into the next filter.
type undefinedValue struct{ path string }

func (u undefinedValue) err() error { return &undefinedError{path: u.path} }

// firstUndefined returns the first undefined value among vs.
func firstUndefined(vs ...any) (undefinedValue, bool) {
	for _, v := range vs {
		if u, ok := v.(undefinedValue); ok {
			return u, true
		}
	}
	return undefinedValue{}, false
}

// asError extracts the error inside a gonja value.
func asError(v *exec.Value) error {
	if v == nil {
		return nil
	}
	if err, ok := v.Interface().(error); ok {
		return err
	}
	return nil
}

// unwrapOne steps one level down an error chain, through gonja values,
// Unwrap, pkg/errors' Cause and joined errors.
func unwrapOne(err error) []error {
	switch t := err.(type) {
	case *exec.Value:
		if inner := asError(t); inner != nil && inner != error(t) {
			return []error{inner}
		}
		return nil
	case interface{ Unwrap() []error }:
		return t.Unwrap()
	case interface{ Unwrap() error }:
		if u := t.Unwrap(); u != nil {
			return []error{u}
		}
	case interface{ Cause() error }:
		if c := t.Cause(); c != nil && c != err {
			return []error{c}
		}
	}
	return nil
}

var lineRe = regexp.MustCompile(`at line (\d+)`)

// classify turns whatever gonja returned into a domain error: the limit hit
// (if any), else the typed error our code produced (found by type down the
// chain or, where gonja flattened it into a string, through st.recorded),
// else a RenderError with the innermost message. The line is the innermost
// "at line N" gonja recorded.
func classify(err error, st *renderState) error {
	if err == nil {
		return nil
	}
	if st != nil && st.limit != nil {
		return st.limit
	}
	var (
		limit *template.LimitError
		ours  error
		last  error
		line  int
	)
	seen := 0
	var walk func(e error, depth int)
	walk = func(e error, depth int) {
		if e == nil || depth > 200 || seen > 1000 {
			return
		}
		seen++
		switch t := e.(type) {
		case *template.LimitError:
			limit = t
			return
		case *undefinedError, *evalError:
			ours = t
			return
		}
		msg := e.Error()
		if st != nil {
			if typed, ok := st.recorded[msg]; ok {
				if le, isLimit := typed.(*template.LimitError); isLimit {
					limit = le
				} else {
					ours = typed
				}
				return
			}
		}
		if _, isValue := e.(*exec.Value); !isValue {
			if m := lineRe.FindStringSubmatch(firstLine(msg)); m != nil {
				if n, convErr := strconv.Atoi(m[1]); convErr == nil {
					line = n
				}
			}
		}
		next := unwrapOne(e)
		if len(next) == 0 {
			last = e
			// A flattened error: find the innermost recorded message it ends with.
			if st != nil && ours == nil {
				best := ""
				for k, typed := range st.recorded {
					if strings.HasSuffix(msg, k) && len(k) > len(best) {
						best, ours = k, typed
					}
				}
			}
			return
		}
		for _, n := range next {
			walk(n, depth+1)
		}
	}
	walk(err, 0)
	switch {
	case limit != nil:
		return limit
	case ours != nil:
		if le, ok := ours.(*template.LimitError); ok {
			return le
		}
		return &template.RenderError{Msg: ours.Error(), Line: line}
	case last != nil:
		return &template.RenderError{Msg: cleanGonjaMessage(last.Error()), Line: line}
	}
	return &template.RenderError{Msg: cleanGonjaMessage(err.Error()), Line: line}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i]
	}
	return s
}

func cleanGonjaMessage(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}
