// Package template holds the pure domain types and ports of stack templates:
// the rendering engine port (Tera-compatible syntax), its limits and error
// kinds, the template → stack matching rule and the parameter-schema port.
//
// Nothing here depends on a template or JSON Schema library; adapters live in
// pkg/adapters/gonja and pkg/adapters/jsonschema.
package template

import (
	"context"
	"fmt"
	"time"
)

// Engine renders Brokkr templates (Tera syntax, see docs/templates.md).
//
// Both methods are safe for concurrent use and never panic. Errors are one of
// *SyntaxError (the source does not parse, or uses an unknown filter, test,
// function or tag), *RenderError (the template failed while rendering, e.g. an
// undefined variable) or *LimitError (a resource limit was hit). All three are
// client errors (HTTP 400).
type Engine interface {
	// Validate checks the syntax of source without rendering it.
	Validate(ctx context.Context, source string) error
	// Render renders source with params as the top-level variables.
	Render(ctx context.Context, source string, params map[string]any) (string, error)
}

// Limits bound the resources one Validate or Render call may use. They exist
// because templates are untrusted input. Zero fields take the default.
type Limits struct {
	// Timeout is the wall-clock budget of one Render (default 2 s).
	Timeout time.Duration
	// MaxOutputBytes caps the rendered output and every string built while
	// rendering (default 1 MiB).
	MaxOutputBytes int
	// MaxLoopIterations caps the total number of for-loop iterations of one
	// render, summed over all loops, and the length of generated lists
	// (default 10,000).
	MaxLoopIterations int
	// MaxRecursionDepth caps the nesting depth of blocks and expressions
	// (default 64).
	MaxRecursionDepth int
	// MaxSourceBytes caps the template source size (default 256 KiB).
	MaxSourceBytes int
}

// Default limit values.
const (
	DefaultTimeout           = 2 * time.Second
	DefaultMaxOutputBytes    = 1 << 20
	DefaultMaxLoopIterations = 10_000
	DefaultMaxRecursionDepth = 64
	DefaultMaxSourceBytes    = 256 << 10
)

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		Timeout:           DefaultTimeout,
		MaxOutputBytes:    DefaultMaxOutputBytes,
		MaxLoopIterations: DefaultMaxLoopIterations,
		MaxRecursionDepth: DefaultMaxRecursionDepth,
		MaxSourceBytes:    DefaultMaxSourceBytes,
	}
}

// WithDefaults returns l with every zero or negative field replaced by its
// default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxLoopIterations <= 0 {
		l.MaxLoopIterations = d.MaxLoopIterations
	}
	if l.MaxRecursionDepth <= 0 {
		l.MaxRecursionDepth = d.MaxRecursionDepth
	}
	if l.MaxSourceBytes <= 0 {
		l.MaxSourceBytes = d.MaxSourceBytes
	}
	return l
}

// SyntaxError reports a template that does not compile. Line and Column are
// 1-based; both are 0 when the position is unknown.
type SyntaxError struct {
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	if e.Column <= 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// RenderError reports a template that compiled but failed while rendering.
// Msg follows Tera's wording where Tera has one, e.g.
// "Variable `name` not found in context while rendering 'template'".
// Line is the 1-based line of the failing tag when known, else 0.
type RenderError struct {
	Msg  string
	Line int
}

func (e *RenderError) Error() string { return e.Msg }

// Limit names used in LimitError.Limit.
const (
	LimitTimeout        = "timeout"
	LimitOutputBytes    = "max_output_bytes"
	LimitLoopIterations = "max_loop_iterations"
	LimitRecursionDepth = "max_recursion_depth"
	LimitSourceBytes    = "max_source_bytes"
)

// LimitError reports that a template hit one of the Limits. Limit is one of
// the Limit* constants; Detail is a human-readable explanation.
type LimitError struct {
	Limit  string
	Detail string
}

func (e *LimitError) Error() string {
	if e.Detail != "" {
		return "template limit exceeded (" + e.Limit + "): " + e.Detail
	}
	return "template limit exceeded (" + e.Limit + ")"
}

// Is makes errors.Is(err, &LimitError{Limit: x}) match on the limit name, and
// errors.Is(err, &LimitError{}) match any limit.
func (e *LimitError) Is(target error) bool {
	t, ok := target.(*LimitError)
	if !ok {
		return false
	}
	return t.Limit == "" || t.Limit == e.Limit
}
