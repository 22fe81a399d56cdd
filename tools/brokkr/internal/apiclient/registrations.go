package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
)

// The generator-registration routes (POST/DELETE /generators/{id}/register,
// GET /agents/{id}/registrations, GET /generators/{id}/registered-agents)
// are the original's; this broker does not serve them yet, so they are not
// in api-spec/openapi.yaml and the generator cannot produce them. These
// hand-written calls follow the original's contract (docs/cli.md,
// "register") and go through the same Doer (PAK, retries, debug log).

// Registration links an agent to a generator scope.
type Registration struct {
	ID           openapi_types.UUID `json:"id"`
	AgentID      openapi_types.UUID `json:"agent_id"`
	GeneratorID  openapi_types.UUID `json:"generator_id"`
	RegisteredAt time.Time          `json:"registered_at"`
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := strings.TrimSuffix(c.Server, "/") + path
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, u, rd)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, u, nil)
	}
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.Client.Do(req)
}

// RegisterAgent registers an agent with a generator scope (201 in the
// original; any 2xx is accepted).
func (c *Client) RegisterAgent(ctx context.Context, generator, agent openapi_types.UUID) (*http.Response, error) {
	return c.send(ctx, http.MethodPost, "/api/v1/generators/"+url.PathEscape(generator.String())+"/register",
		map[string]string{"agent_id": agent.String()})
}

// DeregisterAgent removes an agent's registration with a generator scope.
func (c *Client) DeregisterAgent(ctx context.Context, generator, agent openapi_types.UUID) (*http.Response, error) {
	return c.send(ctx, http.MethodDelete, "/api/v1/generators/"+url.PathEscape(generator.String())+"/register",
		map[string]string{"agent_id": agent.String()})
}

// ListAgentRegistrations lists the generator scopes of an agent.
func (c *Client) ListAgentRegistrations(ctx context.Context, agent openapi_types.UUID) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, "/api/v1/agents/"+url.PathEscape(agent.String())+"/registrations", nil)
}

// ListGeneratorRegisteredAgents lists the agents registered with a generator.
func (c *Client) ListGeneratorRegisteredAgents(ctx context.Context, generator openapi_types.UUID) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, "/api/v1/generators/"+url.PathEscape(generator.String())+"/registered-agents", nil)
}
