package diagnostics_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics/diagnosticstest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

type notes struct{ n int }

func (n *notes) Noted(context.Context, string) { n.n++ }

type fixture struct {
	svc     *diagnostics.Service
	mem     *diagnosticstest.Memory
	journal *journaltest.Journal
	notes   *notes
	agent   uuid.UUID
	object  uuid.UUID
}

func newFixture(t *testing.T) fixture {
	m := diagnosticstest.NewMemory()
	j := &journaltest.Journal{}
	f := fixture{mem: m, journal: j, notes: &notes{}, agent: m.Agent(t)}
	f.object = m.Object(t, m.Stack(t))
	f.svc = diagnostics.NewService(diagnostics.Repos{Tx: j, Journal: j, Requests: m, Refs: m}, f.notes)
	return f
}

func ptr[T any](v T) *T { return &v }

func TestCreateRules(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		caller identity.Principal
		object func(f fixture) uuid.UUID
		in     func(f fixture) diagnostics.CreateInput
		want   error
		msg    string
	}{
		{"admin", identity.Admin, nil, nil, nil, ""},
		{"an agent", identity.Agent(uuid.New()), nil, nil, domain.ErrForbidden, "Unauthorized"},
		{"a generator", identity.Generator(uuid.New()), nil, nil, domain.ErrForbidden, "Unauthorized"},
		{"unknown object", identity.Admin, func(fixture) uuid.UUID { return uuid.New() }, nil, domain.ErrNotFound, "Deployment object not found"},
		{"no agent", identity.Admin, nil, func(fixture) diagnostics.CreateInput { return diagnostics.CreateInput{} },
			domain.ErrInvalid, "agent_id is required"},
		{"unknown agent", identity.Admin, nil, func(fixture) diagnostics.CreateInput { return diagnostics.CreateInput{AgentID: uuid.New()} },
			domain.ErrNotFound, "Agent not found"},
		{"retention 0", identity.Admin, nil, func(f fixture) diagnostics.CreateInput {
			return diagnostics.CreateInput{AgentID: f.agent, RetentionMinutes: ptr(0)}
		}, domain.ErrInvalid, "between 1 and 1440"},
		{"retention too long", identity.Admin, nil, func(f fixture) diagnostics.CreateInput {
			return diagnostics.CreateInput{AgentID: f.agent, RetentionMinutes: ptr(1441)}
		}, domain.ErrInvalid, "between 1 and 1440"},
		{"requested_by too long", identity.Admin, nil, func(f fixture) diagnostics.CreateInput {
			return diagnostics.CreateInput{AgentID: f.agent, RequestedBy: ptr(strings.Repeat("x", 256))}
		}, domain.ErrInvalid, "requested_by"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			obj, in := f.object, diagnostics.CreateInput{AgentID: f.agent, RetentionMinutes: ptr(5)}
			if c.object != nil {
				obj = c.object(f)
			}
			if c.in != nil {
				in = c.in(f)
			}
			r, err := f.svc.Create(ctx, c.caller, obj, in)
			if c.want != nil {
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
					t.Fatalf("got %v, want %v %q", err, c.want, c.msg)
				}
				if len(f.journal.Audits()) != 0 {
					t.Fatal("a refused request is not audited")
				}
				return
			}
			if err != nil || r.Status != diagnostic.Pending || time.Until(r.ExpiresAt) > 5*time.Minute || time.Until(r.ExpiresAt) < 4*time.Minute {
				t.Fatalf("created %+v %v", r, err)
			}
			if a := f.journal.Audits(); len(a) != 1 || a[0].Action != audit.ActionDiagnosticRequested || *a[0].ResourceID != r.ID {
				t.Fatalf("audit %+v", a)
			}
		})
	}
}

func TestClaimAndSubmit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	agent := identity.Agent(f.agent)
	r, err := f.svc.Create(ctx, identity.Admin, f.object, diagnostics.CreateInput{AgentID: f.agent})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Claim(ctx, identity.Agent(uuid.New()), r.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another agent's claim: %v", err)
	}
	if err := f.svc.CheckSubmit(ctx, agent, r.ID); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("submit before claim: %v", err)
	}
	if got, err := f.svc.Claim(ctx, agent, r.ID); err != nil || got.Status != diagnostic.Claimed {
		t.Fatalf("claim: %+v %v", got, err)
	}
	if _, err := f.svc.Claim(ctx, agent, r.ID); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "already claimed") {
		t.Fatalf("second claim: %v", err)
	}
	if _, err := f.svc.SubmitResult(ctx, identity.Admin, r.ID, diagnostics.ResultInput{}); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("only the agent submits, not even the admin: %v", err)
	}
	if _, err := f.svc.SubmitResult(ctx, agent, r.ID, diagnostics.ResultInput{Events: json.RawMessage(`[]`)}); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("empty pod statuses: %v", err)
	}
	res, err := f.svc.SubmitResult(ctx, agent, r.ID, diagnostics.ResultInput{
		PodStatuses: json.RawMessage(`"[{\"name\":\"p\"}]"`), Events: json.RawMessage(`[]`), LogTails: json.RawMessage(`null`)})
	if err != nil || res.PodStatuses != `[{"name":"p"}]` || res.Events != "[]" || res.LogTails != nil {
		t.Fatalf("submit: %+v %v", res, err)
	}
	if f.notes.n != 1 {
		t.Fatalf("live views noted %d times", f.notes.n)
	}
	view, err := f.svc.Get(ctx, agent, r.ID)
	if err != nil || view.Request.Status != diagnostic.Completed || view.Result == nil {
		t.Fatalf("view %+v %v", view, err)
	}
	if _, err := f.svc.Get(ctx, identity.Generator(uuid.New()), r.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator: %v", err)
	}
}

func TestSubmitFailureAndExpiredClaim(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	agent := identity.Agent(f.agent)
	r, _ := f.svc.Create(ctx, identity.Admin, f.object, diagnostics.CreateInput{AgentID: f.agent})
	if _, err := f.svc.Claim(ctx, agent, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SubmitResult(ctx, agent, r.ID, diagnostics.ResultInput{Error: ptr("no access")}); err != nil {
		t.Fatalf("an error instead of data: %v", err)
	}
	if got, _ := f.mem.GetDiagnostic(ctx, r.ID); got.Status != diagnostic.Failed {
		t.Fatalf("status %s", got.Status)
	}
	// Past expires_at but not swept yet: the claim says expired.
	late, _ := f.svc.Create(ctx, identity.Admin, f.object, diagnostics.CreateInput{AgentID: f.agent, RetentionMinutes: ptr(1)})
	f.mem.Now = func() time.Time { return time.Now().Add(4 * time.Hour) }
	if _, err := f.svc.Claim(ctx, agent, late.ID); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired claim: %v", err)
	}
}

func TestRecentAndPending(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for range 3 {
		if _, err := f.svc.Create(ctx, identity.Admin, f.object, diagnostics.CreateInput{AgentID: f.agent}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, 101} {
		if _, err := f.svc.Recent(ctx, identity.Admin, f.agent, limit); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
	if views, err := f.svc.Recent(ctx, identity.Agent(f.agent), f.agent, 2); err != nil || len(views) != 2 {
		t.Fatalf("recent: %d %v", len(views), err)
	}
	if _, err := f.svc.Recent(ctx, identity.Agent(uuid.New()), f.agent, 2); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another agent's recent: %v", err)
	}
	if p, err := f.svc.Pending(ctx, identity.Agent(f.agent), f.agent); err != nil || len(p) != 3 {
		t.Fatalf("pending %d %v", len(p), err)
	}
	if _, err := f.svc.Pending(ctx, identity.Agent(uuid.New()), f.agent); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another agent's pending: %v", err)
	}
}
