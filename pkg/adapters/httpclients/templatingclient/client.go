// Package templatingclient is api's adapter for the templating service. It
// implements templates.Renderer over the service's internal HTTP API, so the
// CPU-bound, untrusted rendering runs in its own isolated process.
package templatingclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

// Internal API paths, shared with the service.
const (
	ValidateTemplatePath = "/internal/v1/validate-template"
	ValidateSchemaPath   = "/internal/v1/validate-schema"
	RenderPath           = "/internal/v1/render"
)

// ValidateTemplateRequest is the body of ValidateTemplatePath.
type ValidateTemplateRequest struct {
	Source string `json:"source"`
}

// ValidateSchemaRequest is the body of ValidateSchemaPath.
type ValidateSchemaRequest struct {
	Schema string `json:"schema"`
}

// RenderRequest is the body of RenderPath.
type RenderRequest struct {
	Template string         `json:"template"`
	Schema   string         `json:"schema"`
	Params   map[string]any `json:"params"`
}

// RenderResponse is a successful render.
type RenderResponse struct {
	YAML string `json:"yaml"`
}

// ErrorResponse is every non-2xx body: the client message plus the extra
// fields of the original's errors (validation_errors).
type ErrorResponse struct {
	Error            string   `json:"error"`
	ValidationErrors []string `json:"validation_errors,omitempty"`
}

// Client calls the templating service.
type Client struct {
	base string
	http *http.Client
}

// New returns a client for the service at baseURL; timeout bounds one call
// and should exceed the service's render limit.
func New(baseURL string, timeout time.Duration) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), http: telemetry.HTTPClient(nil, timeout)}
}

// ValidateTemplate checks template syntax.
func (c *Client) ValidateTemplate(ctx context.Context, source string) error {
	return c.call(ctx, ValidateTemplatePath, ValidateTemplateRequest{Source: source}, nil)
}

// ValidateSchema checks a parameter schema.
func (c *Client) ValidateSchema(ctx context.Context, schema string) error {
	return c.call(ctx, ValidateSchemaPath, ValidateSchemaRequest{Schema: schema}, nil)
}

// Render validates params and renders the template.
func (c *Client) Render(ctx context.Context, source, schema string, params map[string]any) (string, error) {
	var out RenderResponse
	err := c.call(ctx, RenderPath, RenderRequest{Template: source, Schema: schema, Params: params}, &out)
	return out.YAML, err
}

// call posts one request. A 4xx answer is the client's mistake and comes
// back as a domain error with the service's message; anything else means
// the service is unavailable (503), never a 500 or a hang.
func (c *Client) call(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return domain.Unavailable("templating service unavailable", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				return domain.Unavailable("templating service unavailable", fmt.Errorf("decode: %w", err))
			}
		}
		return nil
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity:
		var e ErrorResponse
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" {
			return domain.Unavailable("templating service unavailable", errors.New("undecodable error body"))
		}
		derr := &domain.Error{Kind: domain.ErrInvalid, Msg: e.Error}
		if resp.StatusCode == http.StatusUnprocessableEntity {
			derr.Kind = domain.ErrUnprocessable
		}
		if e.ValidationErrors != nil {
			derr.Fields = map[string]any{"validation_errors": e.ValidationErrors}
		}
		return derr
	}
	return domain.Unavailable("templating service unavailable", fmt.Errorf("%s: status %d", path, resp.StatusCode))
}
