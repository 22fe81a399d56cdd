// Package rendering is the templating service's use case: syntax checks,
// schema checks, and parameter validation (schema defaults applied first)
// followed by rendering, all under the engine's hard limits. Its errors are
// domain errors carrying the original's messages.
package rendering

import (
	"context"
	"errors"

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
		return &domain.Error{Kind: domain.ErrInvalid, Msg: "Invalid Tera syntax: " + err.Error(), Cause: err}
	}
	return nil
}

// ValidateSchema checks that schema is a JSON Schema (2020-12 or draft-07).
func (s *Service) ValidateSchema(_ context.Context, schema string) error {
	if err := s.schemas.ValidateSchema(schema); err != nil {
		// The validator's message already starts "Invalid JSON: " or
		// "Invalid JSON Schema: ", the original's wording.
		return &domain.Error{Kind: domain.ErrInvalid, Msg: err.Error(), Cause: err}
	}
	return nil
}

// Render validates params against schema (after applying its defaults) and
// renders source with them.
func (s *Service) Render(ctx context.Context, source, schema string, params map[string]any) (string, error) {
	if params == nil {
		params = map[string]any{}
	}
	effective, violations, err := s.schemas.Validate(schema, params)
	if err != nil {
		return "", &domain.Error{Kind: domain.ErrInvalid, Msg: err.Error(), Cause: err}
	}
	if len(violations) > 0 {
		return "", domain.WithFields(domain.Invalid("Invalid parameters"),
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
			return "", &domain.Error{Kind: domain.ErrInvalid, Msg: "Template parse error: " + err.Error(), Cause: err}
		}
		return "", &domain.Error{Kind: domain.ErrInvalid, Msg: "Template rendering failed: " + err.Error(), Cause: err}
	}
	return out, nil
}
