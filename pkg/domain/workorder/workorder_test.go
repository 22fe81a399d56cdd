package workorder

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
)

func TestBackoffIsTwoToTheNTimesBase(t *testing.T) {
	// docs/work-orders.md#backoff and the docs' table: base 60 → 2, 4, 8
	// minutes.
	for n, want := range map[int]time.Duration{1: 2 * time.Minute, 2: 4 * time.Minute, 3: 8 * time.Minute, 0: time.Minute} {
		if got := Backoff(60, n); got != want {
			t.Errorf("Backoff(60, %d) = %v, want %v", n, got, want)
		}
	}
	if got := Backoff(1<<30, 200); got <= 0 {
		t.Errorf("Backoff overflowed: %v", got)
	}
}

func TestAfterFailure(t *testing.T) {
	cases := []struct {
		retryCount, maxRetries int
		retryable              bool
		want                   Outcome
		wantN                  int
	}{
		{0, 3, true, Retry, 1},
		{2, 3, true, Retry, 3},
		{3, 3, true, Exhausted, 4}, // the 4th failure of max_retries=3 is final
		{0, 0, true, Exhausted, 1}, // max_retries=0: the first failure is final
		{0, 3, false, Exhausted, 1},
	}
	for _, c := range cases {
		got, n := AfterFailure(WorkOrder{RetryCount: c.retryCount, MaxRetries: c.maxRetries}, c.retryable)
		if got != c.want || n != c.wantN {
			t.Errorf("retry_count %d max %d retryable %v: got (%v, %d), want (%v, %d)",
				c.retryCount, c.maxRetries, c.retryable, got, n, c.want, c.wantN)
		}
	}
}

func wantInvalid(t *testing.T, err error, substr string) {
	t.Helper()
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("want a 400-class error containing %q, got %v", substr, err)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

func TestTemplateValidate(t *testing.T) {
	ok := Template{WorkType: "custom", YAMLContent: "kind: Job\n", MaxRetries: 3, BackoffSeconds: 60, ClaimTimeoutSeconds: 3600}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Template)) Template { c := ok; f(&c); return c }
	wantInvalid(t, mod(func(c *Template) { c.WorkType = "  " }).Validate(), "Work type cannot be empty")
	wantInvalid(t, mod(func(c *Template) { c.WorkType = strings.Repeat("x", 51) }).Validate(), "50")
	wantInvalid(t, mod(func(c *Template) { c.YAMLContent = "\n" }).Validate(), "YAML content cannot be empty")
	wantInvalid(t, mod(func(c *Template) { c.YAMLContent = "a: [b" }).Validate(), "Invalid YAML")
	wantInvalid(t, mod(func(c *Template) { c.MaxRetries = -1 }).Validate(), "max_retries must be non-negative")
	wantInvalid(t, mod(func(c *Template) { c.BackoffSeconds = 0 }).Validate(), "backoff_seconds must be positive")
	wantInvalid(t, mod(func(c *Template) { c.ClaimTimeoutSeconds = 0 }).Validate(), "claim_timeout_seconds must be positive")
	wantInvalid(t, mod(func(c *Template) { c.MaxRetries = 40 }).Validate(), "10 years")
}

func TestTargetingValidate(t *testing.T) {
	wantInvalid(t, Targeting{}.Validate(), "At least one targeting method")
	wantInvalid(t, Targeting{Labels: []string{"has space"}}.Validate(), "whitespace")
	wantInvalid(t, Targeting{Annotations: map[string]string{"k": ""}}.Validate(), "empty")
	wantInvalid(t, Targeting{AgentIDs: []uuid.UUID{uuid.Nil}}.Validate(), "nil UUID")
	if err := (Targeting{Labels: []string{"builder"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	n := Targeting{Labels: []string{"a", "a"}, AgentIDs: []uuid.UUID{uuid.Max, uuid.Max}}.Normalize()
	if len(n.Labels) != 1 || len(n.AgentIDs) != 1 || n.Annotations == nil {
		t.Fatalf("Normalize: %+v", n)
	}
}

func TestLogEntryAsWorkOrder(t *testing.T) {
	msg := "boom"
	done := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := LogEntry{ID: uuid.New(), WorkType: "build", CompletedAt: done, RetriesAttempted: 2, ResultMessage: &msg}
	w := l.AsWorkOrder()
	if w.Status != StatusFailed || w.LastError == nil || *w.LastError != "boom" || !w.LastErrorAt.Equal(done) ||
		w.RetryCount != 2 || w.MaxRetries != 0 || w.UpdatedAt != done {
		t.Fatalf("failed: %+v", w)
	}
	l.Success = true
	if w := l.AsWorkOrder(); w.Status != StatusCompleted || w.LastError != nil {
		t.Fatalf("completed: %+v", w)
	}
}

func TestWorkOrderJSONHasProgressObject(t *testing.T) {
	var m map[string]any
	b, _ := json.Marshal(WorkOrder{ID: uuid.New()})
	_ = json.Unmarshal(b, &m)
	if v, ok := m["progress"]; !ok || v != nil {
		t.Fatalf("progress should be present and null: %s", b)
	}
	if _, ok := m["progress_message"]; ok {
		t.Fatalf("flat progress columns leaked: %s", b)
	}
	pct, at := 40, time.Now().UTC()
	b, _ = json.Marshal(WorkOrder{ProgressPercent: &pct, ProgressUpdatedAt: &at})
	_ = json.Unmarshal(b, &m)
	p, _ := m["progress"].(map[string]any)
	if p["percent"] != float64(40) || p["message"] != nil {
		t.Fatalf("progress: %s", b)
	}
}
