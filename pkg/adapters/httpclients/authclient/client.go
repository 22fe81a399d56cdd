// Package authclient is api's adapter for the internal auth service: it
// implements authn.Authenticator (POST /internal/v1/verify) and
// authn.PAKIssuer (POST /internal/v1/paks), so api neither reads PAK hashes
// nor generates keys itself. The request and response types here are the
// wire contract the auth service serves.
package authclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/pkg/platform/telemetry"
)

// Paths of the internal API.
const (
	VerifyPath = "/internal/v1/verify"
	IssuePath  = "/internal/v1/paks"
)

// VerifyRequest is the body of POST /internal/v1/verify. Token is the raw
// Authorization header value.
type VerifyRequest struct {
	Token     string `json:"token"`
	ClientIP  string `json:"client_ip"`
	UserAgent string `json:"user_agent"`
}

// VerifyResponse is the 200 answer: the principal, plus the original's
// {admin, agent, generator} payload. ID is null for the admin.
type VerifyResponse struct {
	Role      identity.Role `json:"role"`
	ID        *uuid.UUID    `json:"id"`
	Admin     bool          `json:"admin"`
	Agent     *uuid.UUID    `json:"agent"`
	Generator *uuid.UUID    `json:"generator"`
}

// NewVerifyResponse renders p.
func NewVerifyResponse(p identity.Principal) VerifyResponse {
	pl := p.Payload()
	return VerifyResponse{Role: p.Role, ID: p.ActorID(), Admin: pl.Admin, Agent: pl.Agent, Generator: pl.Generator}
}

// Principal reads the principal back, rejecting inconsistent answers.
func (r VerifyResponse) Principal() (identity.Principal, error) {
	switch {
	case r.Role == identity.RoleAdmin && r.Admin:
		return identity.Admin, nil
	case r.Role == identity.RoleAgent && r.ID != nil && *r.ID != uuid.Nil:
		return identity.Agent(*r.ID), nil
	case r.Role == identity.RoleGenerator && r.ID != nil && *r.ID != uuid.Nil:
		return identity.Generator(*r.ID), nil
	}
	return identity.Principal{}, fmt.Errorf("auth service returned an invalid principal (role %q)", r.Role)
}

// IssueResponse is the answer of POST /internal/v1/paks.
type IssueResponse struct {
	PAK  string `json:"pak"`
	Hash string `json:"hash"`
}

// ErrorResponse is every non-200 body.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Timeout bounds one call to the auth service by default: a slow auth
// service must give the API client a quick 503, not a hang.
const Timeout = 2 * time.Second

// maxResponse bounds what we read from the auth service.
const maxResponse = 64 << 10

// Client calls the auth service.
type Client struct {
	base string
	http *http.Client
}

var (
	_ authn.Authenticator = (*Client)(nil)
	_ authn.PAKIssuer     = (*Client)(nil)
)

// New returns a client for the auth service at baseURL (auth.url, checked
// by config validation) with the default transport and Timeout.
func New(baseURL string) *Client { return NewWith(baseURL, nil, Timeout) }

// NewWith is New with a transport (nil means http.DefaultTransport) and a
// timeout (<= 0 means Timeout). The transport is wrapped for OpenTelemetry
// propagation (otelhttp).
func NewWith(baseURL string, transport http.RoundTripper, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = Timeout
	}
	return &Client{
		base: strings.TrimRight(strings.TrimSpace(baseURL), "/"),
		http: telemetry.HTTPClient(transport, timeout),
	}
}

// Authenticate asks the auth service who token belongs to.
func (c *Client) Authenticate(ctx context.Context, token string, client authn.Client) (identity.Principal, error) {
	body, _ := json.Marshal(VerifyRequest{Token: token, ClientIP: client.IP, UserAgent: client.UserAgent})
	resp, err := c.post(ctx, VerifyPath, body)
	if err != nil {
		return identity.Principal{}, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		var vr VerifyResponse
		if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&vr); err != nil {
			return identity.Principal{}, unavailable(fmt.Errorf("decode verify response: %w", err))
		}
		p, err := vr.Principal()
		if err != nil {
			return identity.Principal{}, unavailable(err)
		}
		return p, nil
	case http.StatusUnauthorized:
		return identity.Principal{}, authn.Unauthenticated()
	case http.StatusTooManyRequests:
		return identity.Principal{}, authn.Throttled(retryAfter(resp.Header.Get("Retry-After")))
	}
	return identity.Principal{}, unavailable(statusError(resp))
}

// Issue asks the auth service for a new PAK and its hash.
func (c *Client) Issue(ctx context.Context) (secret.String, string, error) {
	resp, err := c.post(ctx, IssuePath, []byte("{}"))
	if err != nil {
		return "", "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", "", unavailable(statusError(resp))
	}
	var ir IssueResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&ir); err != nil {
		return "", "", unavailable(fmt.Errorf("decode issue response: %w", err))
	}
	// A PAK whose hash we would store wrongly locks its owner out: check.
	long, err := pak.ParseHeader(ir.PAK)
	if err != nil || !pak.Equal(pak.Hash(long), ir.Hash) {
		return "", "", unavailable(errors.New("auth service issued an inconsistent PAK"))
	}
	return secret.String(ir.PAK), ir.Hash, nil
}

// post sends body, retrying once when the connection failed before the
// request could have been processed (refused, reset, closed idle conn).
func (c *Client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, unavailable(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := c.http.Do(req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, unavailable(lastErr)
}

// retryable reports connection-level failures: the auth service did not
// get (or did not process) the request, so sending it again is safe.
func retryable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func unavailable(cause error) error {
	return domain.Unavailable("authentication service unavailable", cause)
}

func statusError(resp *http.Response) error {
	var er ErrorResponse
	_ = json.NewDecoder(io.LimitReader(resp.Body, maxResponse)).Decode(&er)
	if er.Error != "" {
		return fmt.Errorf("auth service answered %d: %s", resp.StatusCode, er.Error)
	}
	return fmt.Errorf("auth service answered %d", resp.StatusCode)
}

func retryAfter(h string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return time.Second
}

// drain lets the connection be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	_ = resp.Body.Close()
}
