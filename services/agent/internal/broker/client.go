// Package broker is the agent's HTTP client for the Brokkr broker
// (/api/v1, bearer PAK).
package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// Client calls the broker. It is safe for concurrent use.
type Client struct {
	base    string
	pak     secret.String
	http    *http.Client
	timeout time.Duration
	ua      string
}

// Options tune New.
type Options struct {
	// Timeout bounds each call (plus any long-poll wait); 0 means 30 s.
	Timeout time.Duration
	// HTTPClient replaces the default client (tests).
	HTTPClient *http.Client
	UserAgent  string
}

// New returns a client for the broker at baseURL (e.g. http://broker:3000).
func New(baseURL string, pak secret.String, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("broker url %q is not an http(s) URL", baseURL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 8
		hc = &http.Client{Transport: tr}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "brokkr-agent"
	}
	return &Client{base: u.String(), pak: pak, http: hc, timeout: opts.Timeout, ua: opts.UserAgent}, nil
}

// BaseURL is the broker's base URL.
func (c *Client) BaseURL() string { return c.base }

// Response is a raw answer.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Do sends one request to path (relative to the base URL, e.g.
// /api/v1/agents/x/events) and returns the response for 2xx and 304; any
// other status is a *StatusError. extraWait lengthens the timeout for
// long-polls.
//
// A 503 is load shedding or a dependency outage: the request is retried up
// to MaxOverloadRetries times after the server's Retry-After (or an
// exponential backoff for an idempotent GET without one), stretched by a
// random 0–50 % so a fleet that was shed at once does not return at once.
// Other methods are retried only with Retry-After: the server shed them
// before doing anything.
func (c *Client) Do(ctx context.Context, method, path string, body []byte, header http.Header, extraWait time.Duration) (*Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.do(ctx, method, path, body, header, extraWait)
		var se *StatusError
		if err == nil || attempt >= MaxOverloadRetries || !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable {
			return resp, err
		}
		wait, ok := overloadBackoff(se.RetryAfter, method, attempt)
		if !ok {
			return resp, err
		}
		if lifecycle.Sleep(ctx, wait) != nil {
			return resp, err
		}
	}
}

// MaxOverloadRetries bounds Do's retries of a 503.
var MaxOverloadRetries = 3

// overloadBackoff is how long to wait before retrying a 503.
func overloadBackoff(retryAfter, method string, attempt int) (time.Duration, bool) {
	base := time.Duration(0)
	if n, err := strconv.Atoi(strings.TrimSpace(retryAfter)); err == nil && n >= 0 {
		base = min(time.Duration(n)*time.Second, time.Minute)
	} else if method == http.MethodGet {
		base = (250 * time.Millisecond) << attempt
	} else {
		return 0, false
	}
	return base + time.Duration(rand.Int64N(int64(base/2)+1)), true
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, header http.Header, extraWait time.Duration) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+extraWait)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if strings.HasPrefix(path, "/api/") {
		req.Header.Set("Authorization", "Bearer "+c.pak.Reveal())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, stripURL(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the response: %w", method, path, stripURL(err))
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotModified {
		return nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(data),
			RetryAfter: resp.Header.Get("Retry-After")}
	}
	return &Response{Code: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// stripURL drops the URL from a transport error: it may carry the broker's
// address into logs and events; the operation is named by the caller.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request failed: %w", ue.Op, ue.Err)
	}
	return err
}

// IdempotencyKeyHeader carries a request's Idempotency-Key.
const IdempotencyKeyHeader = "Idempotency-Key"

// Send sends a queued report (an outbox record) with its Idempotency-Key,
// so sending it again after a lost answer or a restart records it once.
// An empty key sends the request without the header.
func (c *Client) Send(ctx context.Context, method, path string, body []byte, key string) (*Response, error) {
	var h http.Header
	if key != "" {
		h = http.Header{IdempotencyKeyHeader: {key}}
	}
	return c.Do(ctx, method, path, body, h, 0)
}

func (c *Client) getJSON(ctx context.Context, path string, out any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil, nil, 0)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

// getAs reads the JSON at path as a T.
func getAs[T any](ctx context.Context, c *Client, path string) (T, error) {
	var out T
	err := c.getJSON(ctx, path, &out)
	return out, err
}

func decode(resp *Response, out any) error {
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("decoding the broker's answer: %w", err)
	}
	return nil
}

// Ready calls GET /readyz (no authentication).
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodGet, "/readyz", nil, nil, 0)
	return err
}

// VerifyPAK calls POST /api/v1/auth/pak. A rejected PAK gives an error
// matching domain.ErrUnauthenticated.
func (c *Client) VerifyPAK(ctx context.Context) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/auth/pak", []byte("{}"), nil, 0)
	return err
}

// FindAgent looks the agent up by name and cluster.
func (c *Client) FindAgent(ctx context.Context, name, cluster string) (agent.Agent, error) {
	q := url.Values{"name": {name}, "cluster_name": {cluster}}
	return getAs[agent.Agent](ctx, c, "/api/v1/agents/?"+q.Encode())
}

// RegisterWithGenerator registers the calling agent with generator gen
// (POST /api/v1/generators/{id}/register, no agent_id: the agent acts on
// itself). The broker answers 409 already_registered for a registered
// pair: an error matching domain.ErrConflict, which start-up treats as success.
func (c *Client) RegisterWithGenerator(ctx context.Context, gen uuid.UUID) error {
	_, err := c.Do(ctx, http.MethodPost, "/api/v1/generators/"+gen.String()+"/register", []byte("{}"), nil, 0)
	return err
}

// GetAgent reads the agent record.
func (c *Client) GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error) {
	return getAs[agent.Agent](ctx, c, "/api/v1/agents/"+id.String())
}

// Heartbeat posts a heartbeat. The broker answers with the agent record;
// ok is false when it answered 204 without one.
func (c *Client) Heartbeat(ctx context.Context, id uuid.UUID) (a agent.Agent, ok bool, err error) {
	resp, err := c.Do(ctx, http.MethodPost, "/api/v1/agents/"+id.String()+"/heartbeat", nil, nil, 0)
	if err != nil {
		return a, false, err
	}
	if resp.Code == http.StatusNoContent || len(bytes.TrimSpace(resp.Body)) == 0 {
		return a, false, nil
	}
	if err := decode(resp, &a); err != nil {
		return a, false, err
	}
	return a, a.ID != uuid.Nil, nil
}

// TargetStateQuery steers TargetState.
type TargetStateQuery struct {
	Full bool
	// ETag is sent as If-None-Match.
	ETag string
	// Wait asks the broker to hold the request until the state changes.
	Wait time.Duration
}

// TargetState is one answer of GET /agents/{id}/target-state.
type TargetState struct {
	Objects     []stack.DeploymentObject
	ETag        string
	NotModified bool
}

// TargetState fetches the agent's target state.
func (c *Client) TargetState(ctx context.Context, id uuid.UUID, q TargetStateQuery) (TargetState, error) {
	v := url.Values{}
	if q.Full {
		v.Set("mode", "full")
	}
	if q.Wait > 0 {
		v.Set("wait", q.Wait.String())
	}
	path := "/api/v1/agents/" + id.String() + "/target-state"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	h := http.Header{}
	if q.ETag != "" {
		h.Set("If-None-Match", q.ETag)
	}
	resp, err := c.Do(ctx, http.MethodGet, path, nil, h, q.Wait)
	if err != nil {
		return TargetState{}, err
	}
	ts := TargetState{ETag: resp.Header.Get("ETag")}
	if resp.Code == http.StatusNotModified {
		ts.NotModified = true
		return ts, nil
	}
	if err := decode(resp, &ts.Objects); err != nil {
		return TargetState{}, err
	}
	return ts, nil
}

// Event is the body of POST /agents/{id}/events. Its types and statuses
// are those of pkg/domain/agent (agent.EventTypeDeploy, agent.EventSuccess …).
type Event struct {
	AgentID            uuid.UUID `json:"agent_id"`
	DeploymentObjectID uuid.UUID `json:"deployment_object_id"`
	EventType          string    `json:"event_type"`
	Status             string    `json:"status"`
	Message            *string   `json:"message"`
}

// EventsPath is where an agent posts its events.
func EventsPath(agentID uuid.UUID) string { return "/api/v1/agents/" + agentID.String() + "/events" }

// PostEvent posts one event.
func (c *Client) PostEvent(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = c.Do(ctx, http.MethodPost, EventsPath(e.AgentID), body, nil, 0)
	return err
}

// Events lists the events the agent reported.
func (c *Client) Events(ctx context.Context, agentID uuid.UUID) ([]agent.Event, error) {
	return getAs[[]agent.Event](ctx, c, EventsPath(agentID))
}

// Stacks lists the stacks associated with the agent.
func (c *Client) Stacks(ctx context.Context, agentID uuid.UUID) ([]stack.Stack, error) {
	return getAs[[]stack.Stack](ctx, c, "/api/v1/agents/"+agentID.String()+"/stacks")
}

// GetDeploymentObject reads a deployment object of a stack the agent is
// associated with.
func (c *Client) GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error) {
	return getAs[stack.DeploymentObject](ctx, c, "/api/v1/deployment-objects/"+id.String())
}

// PendingDiagnostics lists the agent's pending diagnostic requests.
func (c *Client) PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error) {
	return getAs[[]diagnostic.Request](ctx, c, "/api/v1/agents/"+agentID.String()+"/diagnostics/pending")
}

// ClaimDiagnostic claims a pending request; a 409 (claimed by someone else,
// expired) comes back as a *StatusError.
func (c *Client) ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error) {
	var r diagnostic.Request
	resp, err := c.Do(ctx, http.MethodPost, "/api/v1/diagnostics/"+id.String()+"/claim", nil, nil, 0)
	if err != nil {
		return r, err
	}
	err = decode(resp, &r)
	return r, err
}

// DiagnosticResultPath is where the result of a request is posted.
func DiagnosticResultPath(id uuid.UUID) string {
	return "/api/v1/diagnostics/" + id.String() + "/result"
}
