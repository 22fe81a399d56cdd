package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

// failOnce runs Fail(err) in a real gin handler and returns the recorded
// answer.
func failOnce(t *testing.T, ctx context.Context, err error) *httptest.ResponseRecorder {
	t.Helper()
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.GET("/x", func(c *gin.Context) { Fail(c, err) })
	w := httptest.NewRecorder()
	e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx))
	return w
}

func TestFailMapsEveryKindThroughTheTable(t *testing.T) {
	throttled := &domain.Error{Kind: domain.ErrThrottled, Msg: "slow down", Fields: map[string]any{"retry_after": 7}}
	tests := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		msg        string
		code       string
	}{
		{"invalid", domain.Invalid("bad name"), 400, "", "bad name", "bad_request"},
		{"unauthenticated", domain.Unauthenticated("invalid PAK"), 401, "", "invalid PAK", "unauthorized"},
		{"forbidden", domain.Forbidden("admin only"), 403, "", "admin only", "forbidden"},
		{"not found", domain.NotFound("agent not found"), 404, "", "agent not found", "not_found"},
		{"conflict", domain.Conflict("already exists"), 409, "", "already exists", "conflict"},
		{"unprocessable", domain.Unprocessable("no such stack"), 422, "", "no such stack", "unprocessable_entity"},
		{"throttled without a hint", &domain.Error{Kind: domain.ErrThrottled, Msg: "slow"}, 429, "60", "slow", "rate_limited"},
		{"throttled with its own retry_after", throttled, 429, "7", "slow down", "rate_limited"},
		{"unavailable", domain.Unavailable("database unavailable", errors.New("dial")), 503, "5", "database unavailable", "service_unavailable"},
		// An in-flight idempotent request is a conflict worth retrying at
		// once: the specific kind wins over the general one it wraps.
		{"in flight", &domain.Error{Kind: domain.ErrInFlight, Msg: "in flight"}, 409, "1", "in flight", "request_in_flight"},
		{"key reused", &domain.Error{Kind: domain.ErrKeyReused, Msg: "reused"}, 422, "", "reused", "idempotency_key_reused"},
		{"wrapped domain error", fmt.Errorf("create: %w", domain.NotFound("stack not found")), 404, "", "stack not found", "not_found"},
		{"refused connection", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), 503, "5", msgUnavailable, "service_unavailable"},
		{"a bug", errors.New("nil map"), 500, "", msgInternal, "internal_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := failOnce(t, context.Background(), tt.err)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if got := w.Header().Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			// Both wire shapes: the seed's "error" and 0.9.1's code and message.
			if body["error"] != tt.msg || body["message"] != tt.msg || body["code"] != tt.code {
				t.Errorf("body %v, want error=message=%q code %q", body, tt.msg, tt.code)
			}
			if StatusOf(tt.err) != tt.status {
				t.Errorf("StatusOf %d, want %d", StatusOf(tt.err), tt.status)
			}
		})
	}
}

func TestFailKeepsFieldsAndHidesCauses(t *testing.T) {
	err := domain.WithFields(&domain.Error{Kind: domain.ErrInvalid, Msg: "bad parameters",
		Cause: errors.New("secret detail")}, map[string]any{"validation_errors": []string{"x is required"}})
	w := failOnce(t, context.Background(), err)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if v, ok := body["validation_errors"].([]any); !ok || len(v) != 1 || v[0] != "x is required" {
		t.Errorf("validation_errors %v", body["validation_errors"])
	}
	details, _ := body["details"].(map[string]any)
	if v, ok := details["validation_errors"].([]any); !ok || len(v) != 1 {
		t.Errorf("details %v, want the same fields", body["details"])
	}
	if strings.Contains(w.Body.String(), "secret detail") {
		t.Errorf("the cause leaked: %s", w.Body)
	}
}

func TestFailRecordsAGoneClientAs499(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := failOnce(t, ctx, fmt.Errorf("query: %w", context.Canceled))
	if w.Code != StatusClientClosedRequest || w.Body.Len() != 0 {
		t.Fatalf("got %d %q, want 499 and no body", w.Code, w.Body)
	}
}

func TestFailPrefersTheErrorsOwnCode(t *testing.T) {
	err := domain.WithCode(domain.NotFound("agent not found"), "agent_not_found")
	// A code set closer to the failure is not overwritten.
	err = domain.WithCode(err, "not_found")
	w := failOnce(t, context.Background(), fmt.Errorf("get: %w", err))
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 404 || body["code"] != "agent_not_found" || body["details"] != nil {
		t.Fatalf("%d %v", w.Code, body)
	}
}
