package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, typ string
		want         bool
	}{
		{"*", "agent.registered", true},
		{"*", "anything", true},
		{"deployment.*", "deployment.applied", true},
		{"deployment.*", "deployment.failed", true},
		{"deployment.*", "deployment", false},
		{"deployment.*", "deploymentX.applied", false},
		{"deployment.*", "stack.created", false},
		{"health.*", "healthcheck", false},
		{"workorder.*", "workorder.completed", true},
		{"stack.created", "stack.created", true},
		{"stack.created", "stack.deleted", false},
		{"*.failed", "deployment.failed", false}, // no other globbing
		{"*.failed", "*.failed", true},
		{".*", "x.y", false},
		{"", "", true},
		{"agent.registered", "agent.registered.extra", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.pattern, c.typ); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.pattern, c.typ, got, c.want)
		}
	}
	if !MatchesAny([]string{"stack.created", "agent.*"}, "agent.deregistered") {
		t.Error("MatchesAny should match the second pattern")
	}
	if MatchesAny(nil, "agent.registered") {
		t.Error("no patterns match nothing")
	}
}

func TestFiltersMatch(t *testing.T) {
	agentA, agentB, stackS := uuid.New(), uuid.New(), uuid.New()
	subj := Subject{AgentID: &agentA, StackID: &stackS, Labels: []string{"env:production", "tier=1", "edge"},
		Annotations: map[string][]string{"region": {"eu", "us"}}}
	cases := []struct {
		name string
		f    *Filters
		s    Subject
		want bool
	}{
		{"nil filters", nil, Subject{}, true},
		{"empty filters", &Filters{}, Subject{}, true},
		{"agent matches", &Filters{AgentID: &agentA}, subj, true},
		{"agent differs", &Filters{AgentID: &agentB}, subj, false},
		{"agent needed, event has none", &Filters{AgentID: &agentA}, Subject{StackID: &stackS}, false},
		{"stack matches", &Filters{StackID: &stackS}, subj, true},
		{"stack needed, event has none", &Filters{StackID: &stackS}, Subject{AgentID: &agentA}, false},
		{"label k:v", &Filters{Labels: map[string]string{"env": "production"}}, subj, true},
		{"label k=v", &Filters{Labels: map[string]string{"tier": "1"}}, subj, true},
		{"bare label with empty value", &Filters{Labels: map[string]string{"edge": ""}}, subj, true},
		{"annotation", &Filters{Labels: map[string]string{"region": "us"}}, subj, true},
		{"label value differs", &Filters{Labels: map[string]string{"env": "staging"}}, subj, false},
		{"all labels required", &Filters{Labels: map[string]string{"env": "production", "region": "ap"}}, subj, false},
		{"labels and no subject", &Filters{Labels: map[string]string{"env": "production"}}, Subject{}, false},
		{"every filter must hold", &Filters{AgentID: &agentA, StackID: &stackS, Labels: map[string]string{"region": "eu"}}, subj, true},
	}
	for _, c := range cases {
		if got := c.f.Matches(c.s); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSubjectIDs(t *testing.T) {
	a, s, d := uuid.New(), uuid.New(), uuid.New()
	ga, gs, gd := SubjectIDs(map[string]any{"agent_id": a.String(), "stack_id": s.String(), "deployment_object_id": d.String()})
	if ga == nil || *ga != a || gs == nil || *gs != s || gd == nil || *gd != d {
		t.Fatalf("SubjectIDs = %v %v %v", ga, gs, gd)
	}
	ga, gs, gd = SubjectIDs(map[string]any{"agent_id": "nope", "stack_id": 5})
	if ga != nil || gs != nil || gd != nil {
		t.Fatalf("malformed ids must be ignored, got %v %v %v", ga, gs, gd)
	}
}

func TestCanClaim(t *testing.T) {
	// The docs' label-matching table (docs/webhooks.md#agent-delivery).
	cases := []struct {
		target, agent []string
		want          bool
	}{
		{[]string{"env:prod"}, []string{"env:prod", "region:us"}, true},
		{[]string{"env:prod", "region:us"}, []string{"env:prod"}, false},
		{[]string{"env:prod"}, []string{"env:staging"}, false},
		{nil, []string{"env:prod"}, false}, // broker-mode
		{[]string{}, nil, false},
		{[]string{"a"}, nil, false},
	}
	for _, c := range cases {
		if got := CanClaim(c.target, c.agent); got != c.want {
			t.Errorf("CanClaim(%v, %v) = %v, want %v", c.target, c.agent, got, c.want)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := map[int]Verdict{
		0: Retryable, 200: Delivered, 201: Delivered, 204: Delivered, 299: Delivered,
		408: Retryable, 429: Retryable, 500: Retryable, 502: Retryable, 503: Retryable, 599: Retryable,
		400: Rejected, 401: Rejected, 403: Rejected, 404: Rejected, 410: Rejected, 422: Rejected,
		301: Rejected, 302: Rejected, 100: Rejected,
	}
	for code, want := range cases {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	if got := Backoff(1, 0); got != 2*time.Second {
		t.Errorf("Backoff(1, 0) = %v, want 2s", got)
	}
	if got := Backoff(3, 0); got != 8*time.Second {
		t.Errorf("Backoff(3, 0) = %v, want 8s", got)
	}
	// With the largest jitter, delay n is still below delay n+1 without any.
	for n := 1; n < 11; n++ {
		hi, lo := Backoff(n, 0.999), Backoff(n+1, 0)
		if hi >= lo {
			t.Errorf("Backoff(%d, max jitter) = %v is not below Backoff(%d, 0) = %v", n, hi, n+1, lo)
		}
		if j := Backoff(n, 0.5); j <= Backoff(n, 0) {
			t.Errorf("jitter did not widen Backoff(%d)", n)
		}
	}
	if got := Backoff(40, 0.5); got != BackoffMax {
		t.Errorf("Backoff(40) = %v, want the cap %v", got, BackoffMax)
	}
	if got := Backoff(0, 0); got != 2*time.Second {
		t.Errorf("Backoff(0) = %v, want the first retry's 2s", got)
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := Decide(Delivered, 1, 5, now, 0)
	if d.Status != StatusSuccess || d.NextRetryAt != nil || d.Attempts != 1 {
		t.Errorf("delivered: %+v", d)
	}
	d = Decide(Rejected, 1, 5, now, 0)
	if d.Status != StatusDead || d.NextRetryAt != nil {
		t.Errorf("rejected must be dead at once: %+v", d)
	}
	d = Decide(Retryable, 1, 5, now, 0)
	if d.Status != StatusFailed || d.NextRetryAt == nil || !d.NextRetryAt.Equal(now.Add(2*time.Second)) {
		t.Errorf("first retryable failure: %+v", d)
	}
	// max_retries counts retries after the first attempt: attempt 6 of 5 retries is the last.
	if d := Decide(Retryable, 5, 5, now, 0); d.Status != StatusFailed {
		t.Errorf("attempt 5 of max_retries 5 must still retry: %+v", d)
	}
	if d := Decide(Retryable, 6, 5, now, 0); d.Status != StatusDead {
		t.Errorf("attempt 6 of max_retries 5 must be dead: %+v", d)
	}
	if d := Decide(Retryable, 1, 0, now, 0); d.Status != StatusDead {
		t.Errorf("max_retries 0: the first failure is final: %+v", d)
	}
}

func TestSignature(t *testing.T) {
	// RFC 4231 test case 2.
	got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?"))
	want := "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
	if got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if !Verify([]byte("Jefe"), []byte("what do ya want for nothing?"), want) {
		t.Error("Verify rejects a good signature")
	}
	if Verify([]byte("Jefe"), []byte("what do ya want for nothing!"), want) {
		t.Error("Verify accepts a signature of another body")
	}
}

func TestValidation(t *testing.T) {
	bad := func(err error, want string) {
		t.Helper()
		if err == nil || !errors.Is(err, domain.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an invalid-input error containing %q", err, want)
		}
	}
	bad(ValidateName("  "), "Name cannot be empty")
	bad(ValidateName(strings.Repeat("n", 256)), "cannot exceed 255")
	bad(ValidateURL(""), "URL is required")
	bad(ValidateURL("ftp://x"), "must start with http:// or https://")
	bad(ValidateURL("HTTP://x"), "must start with http:// or https://") // case-sensitive, as the original
	bad(ValidateURL("http://"), "with a host")
	bad(ValidateURL("https://"+strings.Repeat("a", 2048)), "cannot exceed 2048")
	bad(ValidateEventTypes(nil), "At least one event type is required")
	bad(ValidateEventTypes([]string{"ok", " "}), "cannot be blank")
	bad(ValidateLimits(-1, 30), "max_retries")
	bad(ValidateLimits(101, 30), "max_retries")
	bad(ValidateLimits(5, 0), "timeout_seconds")
	bad(ValidateLimits(5, 301), "timeout_seconds")
	bad(ValidateFilters(&Filters{Labels: map[string]string{"": "x"}}), "blank")
	bad(ValidateAuthHeader("Bearer x\r\nX-Evil: 1"), "line breaks")
	bad(ValidateAuthHeader(" "), "cannot be blank")
	bad(ValidateSigningSecret(""), "cannot be blank")
	bad(ValidateSigningSecret(strings.Repeat("s", 1025)), "cannot exceed")
	if _, err := NormalizeTargetLabels([]string{"ok", ""}); err == nil {
		t.Error("a blank target label must be rejected")
	}
	for _, ok := range []error{ValidateName("n"), ValidateURL("https://hooks.example.com/x?y=1"), ValidateEventTypes([]string{"*"}),
		ValidateLimits(0, 1), ValidateLimits(100, 300), ValidateFilters(nil)} {
		if ok != nil {
			t.Errorf("unexpected error %v", ok)
		}
	}
	// The URL never appears in a validation message.
	if err := ValidateURL("gopher://secret-token@example.com"); err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("validation message leaks the URL: %v", err)
	}
	got, err := NormalizeTargetLabels([]string{})
	if err != nil || got != nil {
		t.Errorf("an empty list must become nil (broker mode), got %v %v", got, err)
	}
	got, _ = NormalizeTargetLabels([]string{"a", "b", "a"})
	if len(got) != 2 {
		t.Errorf("duplicates must collapse, got %v", got)
	}
}

func TestHTTPError(t *testing.T) {
	if got := HTTPError(500, []byte(" boom ")); got != "HTTP 500 Internal Server Error: boom" {
		t.Errorf("HTTPError = %q", got)
	}
	long := HTTPError(503, []byte(strings.Repeat("é", 300)))
	if len(long) > 250 {
		t.Errorf("body not truncated: %d bytes", len(long))
	}
	if got := HTTPError(299, nil); got != "HTTP 299" {
		t.Errorf("HTTPError(299) = %q", got)
	}
}

func FuzzMatchPattern(f *testing.F) {
	for _, s := range []string{"*", "deployment.*", "a.b", ".*", "*.*", ""} {
		f.Add(s, "deployment.applied")
	}
	f.Fuzz(func(t *testing.T, pattern, typ string) {
		got := MatchPattern(pattern, typ)
		if pattern == typ && !got {
			t.Fatalf("a pattern must match itself: %q", pattern)
		}
		if got && pattern != "*" && pattern != typ && !strings.HasSuffix(pattern, ".*") {
			t.Fatalf("%q matched %q without a wildcard", pattern, typ)
		}
	})
}
