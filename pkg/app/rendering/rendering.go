// Package rendering is the templating service's use case: syntax checks,
// schema checks, and parameter validation (schema defaults applied first)
// followed by rendering, all under the engine's hard limits. Its errors are
// domain errors carrying the original's messages.
package rendering

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
)

// Service renders templates. It implements templates.Renderer in-process.
type Service struct {
	engine  template.Engine
	schemas template.SchemaValidator
}

// NewService wires the use case.
func NewService(engine template.Engine, schemas template.SchemaValidator) *Service {
	return &Service{engine: engine, schemas: schemas}
}

// ValidateTemplate checks the syntax (unknown filters included).
func (s *Service) ValidateTemplate(ctx context.Context, source string) error {
	if err := s.engine.Validate(ctx, source); err != nil {
		return &domain.Error{Kind: domain.ErrInvalid, Code: "invalid_template_syntax", Msg: "Invalid Tera syntax: " + err.Error(), Cause: err}
	}
	return nil
}

// SchemaTimeout bounds one schema compile or parameter validation. The
// validator's static limits (size, depth, fan-out, no $ref cycles) keep
// both to milliseconds; this is the second guard, and the request's own
// cancellation ends the wait as well.
const SchemaTimeout = 2 * time.Second

// ValidateSchema checks that schema is a JSON Schema (2020-12 or draft-07).
func (s *Service) ValidateSchema(ctx context.Context, schema string) error {
	_, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, s.schemas.ValidateSchema(schema) })
	if err != nil {
		return domain.WithCode(schemaError(err), "invalid_parameters_schema")
	}
	return nil
}

// schemaError maps a validator failure: limits and $ref cycles are 422, any
// other unusable schema 400 (the validator's message already starts
// "Invalid JSON: " or "Invalid JSON Schema: ", the original's wording).
func schemaError(err error) error {
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, template.ErrSchemaRefused):
		return &domain.Error{Kind: domain.ErrUnprocessable, Msg: err.Error(), Cause: err}
	}
	return &domain.Error{Kind: domain.ErrInvalid, Msg: err.Error(), Cause: err}
}

// bounded runs fn (a schema compile or validation, which take no context)
// until it returns, ctx ends, or SchemaTimeout passes. A panic in fn is an
// error, not a crash. After a timeout fn may still finish in the
// background; the static limits bound how long that can be.
func bounded[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{err: &domain.Error{Kind: domain.ErrUnprocessable,
					Msg: "Invalid JSON Schema: the schema cannot be evaluated", Cause: fmt.Errorf("panic: %v", r)}}
			}
		}()
		v, err := fn()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(SchemaTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-timer.C:
		return zero, &domain.Error{Kind: domain.ErrUnprocessable,
			Msg: fmt.Sprintf("Invalid JSON Schema: evaluating the schema took longer than %s", SchemaTimeout)}
	}
}

// Render validates params against schema (after applying its defaults) and
// renders source with them.
func (s *Service) Render(ctx context.Context, source, schema string, params map[string]any) (string, error) {
	if params == nil {
		params = map[string]any{}
	}
	type validated struct {
		effective  any
		violations []template.Violation
	}
	res, err := bounded(ctx, func() (validated, error) {
		e, v, err := s.schemas.Validate(schema, params)
		return validated{e, v}, err
	})
	if err != nil {
		return "", schemaError(err)
	}
	effective, violations := res.effective, res.violations
	if len(violations) > 0 {
		return "", domain.WithFields(domain.InvalidCode("invalid_parameters", "Invalid parameters"),
			map[string]any{"validation_errors": template.ViolationStrings(violations)})
	}
	vars, ok := effective.(map[string]any)
	if !ok {
		vars = params
	}
	out, err := s.engine.Render(ctx, source, vars)
	if err != nil {
		var syn *template.SyntaxError
		if errors.As(err, &syn) {
			return "", &domain.Error{Kind: domain.ErrInvalid, Code: "invalid_template_syntax", Msg: "Template parse error: " + err.Error(), Cause: err}
		}
		return "", &domain.Error{Kind: domain.ErrInvalid, Code: "template_render_failed", Msg: "Template rendering failed: " + err.Error(), Cause: err}
	}
	return out, nil
}
