package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

var (
	errNotFound  = domain.NotFound("Stack not found")
	errForbidden = domain.Forbidden("Access denied")
)

type recordingPublisher struct {
	got map[uuid.UUID][]telemetry.Frame
}

func (r *recordingPublisher) Publish(id uuid.UUID, frames []telemetry.Frame) {
	r.got[id] = append(r.got[id], frames...)
}

func frame(t *testing.T, typ string, body any) telemetry.Frame {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return telemetry.Frame{Type: typ, Body: b}
}

// Ingest on the memory store: accepted frames are stored and published per
// stack, others counted; a bad frame refuses the whole batch.
func TestIngest(t *testing.T) {
	ctx := context.Background()
	m := telemetrytest.NewMemory()
	agent, mine, theirs := uuid.New(), m.Stack(t), m.Stack(t)
	m.Associate(t, agent, mine)
	pub := &recordingPublisher{got: map[uuid.UUID][]telemetry.Frame{}}
	svc := telemetry.NewService(m, ownedStacks{mine: uuid.New(), theirs: uuid.New()}, pub, telemetry.Options{})
	p := identity.Principal{Role: identity.RoleAgent, ID: agent}
	now := time.Now().UTC()
	line := domaintelemetry.PodLogLine{StackID: mine, Namespace: "ns", Pod: "p", Container: "c", TS: now, Line: strings.Repeat("é", 9000)}
	batch := []telemetry.Frame{
		frame(t, domaintelemetry.TypePodLogLine, line),
		frame(t, domaintelemetry.TypeLogGap, domaintelemetry.LogGap{StackID: mine, SinceTS: now, DroppedCount: 5, Reason: domaintelemetry.GapRateLimit}),
		frame(t, domaintelemetry.TypeK8sEvent, domaintelemetry.K8sEvent{StackID: theirs, ObservedAt: now, Reason: "r", EventType: "Normal",
			InvolvedObject: domaintelemetry.ObjectRef{Kind: "Pod", Name: "p"}}),
	}
	res, err := svc.Ingest(ctx, p, agent, batch)
	if err != nil || res != (telemetry.Result{Accepted: 2, Dropped: 1}) {
		t.Fatalf("ingest %+v, %v", res, err)
	}
	if l, e := m.Count(t, mine); l != 2 || e != 0 {
		t.Fatalf("stored %d logs %d events", l, e)
	}
	if len(pub.got[mine]) != 2 || len(pub.got[theirs]) != 0 {
		t.Fatalf("published %v", pub.got)
	}
	rows, _ := m.ListLogs(ctx, mine, now.Add(-time.Hour), 10)
	for _, r := range rows {
		if r.AgentID != agent {
			t.Errorf("agent_id not filled: %+v", r)
		}
		if r.Kind == telemetry.KindLine && (len(r.Line) > domaintelemetry.MaxLineBytes || !strings.HasPrefix(r.Line, "éé") || strings.ContainsRune(r.Line, '\uFFFD')) {
			t.Errorf("line cut to %d bytes, or mid-rune", len(r.Line))
		}
	}

	for name, tc := range map[string]struct {
		p      identity.Principal
		frames []telemetry.Frame
		kind   error
	}{
		"another agent":  {identity.Principal{Role: identity.RoleAgent, ID: uuid.New()}, batch, domain.ErrForbidden},
		"admin":          {identity.Admin, batch, domain.ErrForbidden},
		"unknown type":   {p, []telemetry.Frame{{Type: "heartbeat", Body: json.RawMessage(`{}`)}}, domain.ErrUnprocessable},
		"spoofed agent":  {p, []telemetry.Frame{frame(t, domaintelemetry.TypePodLogLine, domaintelemetry.PodLogLine{AgentID: uuid.New(), StackID: mine, Namespace: "n", Pod: "p", Container: "c", TS: now})}, domain.ErrInvalid},
		"missing stack":  {p, []telemetry.Frame{frame(t, domaintelemetry.TypePodLogLine, domaintelemetry.PodLogLine{Namespace: "n", Pod: "p", Container: "c", TS: now})}, domain.ErrUnprocessable},
		"bad gap reason": {p, []telemetry.Frame{frame(t, domaintelemetry.TypeLogGap, domaintelemetry.LogGap{StackID: mine, SinceTS: now, Reason: "x"})}, domain.ErrUnprocessable},
		"too many":       {p, make([]telemetry.Frame, domaintelemetry.MaxFrames+1), domain.ErrUnprocessable},
	} {
		if _, err := svc.Ingest(ctx, tc.p, agent, tc.frames); !errors.Is(err, tc.kind) {
			t.Errorf("%s: %v, want %v", name, err, tc.kind)
		}
	}
	if l, _ := m.Count(t, mine); l != 2 {
		t.Errorf("refused batches stored rows: %d", l)
	}
}

// The history clamps since into the window, caps limit and reports the
// configured window under the 6 h ceiling.
func TestHistoryWindow(t *testing.T) {
	ctx := context.Background()
	m := telemetrytest.NewMemory()
	agent, st, owner := uuid.New(), m.Stack(t), uuid.New()
	_ = m.InsertTelemetry(ctx, []telemetry.LogRecord{telemetrytest.Line(agent, st, "old")}, nil)
	m.Age(t, st, 2*time.Hour)
	_ = m.InsertTelemetry(ctx, []telemetry.LogRecord{telemetrytest.Line(agent, st, "new")}, nil)
	svc := telemetry.NewService(m, ownedStacks{st: owner}, nil, telemetry.Options{Retention: func() time.Duration { return time.Hour }})
	gen := identity.Principal{Role: identity.RoleGenerator, ID: owner}
	long := time.Now().Add(-48 * time.Hour)
	h, err := svc.Logs(ctx, gen, st, telemetry.Query{Since: &long})
	if err != nil || len(h.Lines) != 1 || h.Lines[0].Line != "new" {
		t.Fatalf("lines %+v, %v: the 2 h old row is outside the 1 h window", h.Lines, err)
	}
	if h.Retention.RetentionCeilingSeconds != 21600 || h.Retention.EffectiveRetentionSeconds != 3600 ||
		h.Retention.OldestAvailableTS == nil || h.Retention.LongTermSinkHint == "" {
		t.Fatalf("retention %+v", h.Retention)
	}
	big, zero := 100000, 0
	if _, err := svc.Logs(ctx, gen, st, telemetry.Query{Limit: &big}); err != nil {
		t.Fatalf("limit over the maximum: %v", err)
	}
	if _, err := svc.Logs(ctx, gen, st, telemetry.Query{Limit: &zero}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
	if _, err := svc.Events(ctx, identity.Principal{Role: identity.RoleAgent, ID: agent}, st, telemetry.Query{}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent reading events: %v", err)
	}
	over := telemetry.NewService(m, ownedStacks{st: owner}, nil, telemetry.Options{Retention: func() time.Duration { return 24 * time.Hour }})
	if h, _ := over.Logs(ctx, gen, st, telemetry.Query{}); h.Retention.EffectiveRetentionSeconds != 21600 {
		t.Fatalf("a window over the ceiling is capped: %+v", h.Retention)
	}
}
