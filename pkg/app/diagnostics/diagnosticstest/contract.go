package diagnosticstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth/deploymenthealthtest"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
)

// Repos is one implementation under test.
type Repos struct {
	Requests diagnostics.RequestRepository
	Refs     diagnostics.References
	World    deploymenthealthtest.World
}

// RunRequestRepositoryContract checks the rules every RequestRepository
// and References implementation keeps.
func RunRequestRepositoryContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()
	setup := func(t *testing.T) (Repos, uuid.UUID, uuid.UUID) {
		r := newRepos(t)
		return r, r.World.Agent(t), r.World.Object(t, r.World.Stack(t))
	}
	create := func(t *testing.T, r Repos, agent, obj uuid.UUID, expires time.Time) diagnostic.Request {
		t.Helper()
		by := "ops"
		req := diagnostic.Request{AgentID: agent, DeploymentObjectID: obj, RequestedBy: &by, ExpiresAt: expires}
		if err := r.Requests.CreateDiagnostic(ctx, &req); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct created_at, so order is by creation
		return req
	}
	later := time.Now().Add(time.Hour)

	t.Run("create fills id and status; get reads it back", func(t *testing.T) {
		r, agent, obj := setup(t)
		req := create(t, r, agent, obj, later)
		if req.ID == uuid.Nil || req.Status != diagnostic.Pending || req.CreatedAt.IsZero() || req.ClaimedAt != nil {
			t.Fatalf("created %+v", req)
		}
		got, err := r.Requests.GetDiagnostic(ctx, req.ID)
		if err != nil || got.ID != req.ID || got.AgentID != agent || *got.RequestedBy != "ops" ||
			!got.ExpiresAt.Round(time.Millisecond).Equal(later.Round(time.Millisecond)) {
			t.Fatalf("get %+v %v", got, err)
		}
		if _, err := r.Requests.GetDiagnostic(ctx, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown request: %v", err)
		}
		if res, err := r.Requests.GetDiagnosticResult(ctx, req.ID); res != nil || err != nil {
			t.Fatalf("no result yet: %v %v", res, err)
		}
	})

	t.Run("a request needs an existing agent and object", func(t *testing.T) {
		r, agent, obj := setup(t)
		for name, req := range map[string]diagnostic.Request{
			"agent":  {AgentID: uuid.New(), DeploymentObjectID: obj, ExpiresAt: later},
			"object": {AgentID: agent, DeploymentObjectID: uuid.New(), ExpiresAt: later},
		} {
			if err := r.Requests.CreateDiagnostic(ctx, &req); !errors.Is(err, domain.ErrUnprocessable) {
				t.Errorf("unknown %s: %v", name, err)
			}
		}
	})

	t.Run("pending lists the agent's unexpired pending requests, oldest first", func(t *testing.T) {
		r, agent, obj := setup(t)
		first := create(t, r, agent, obj, later)
		create(t, r, agent, obj, time.Now().Add(-time.Minute)) // expired
		claimed := create(t, r, agent, obj, later)
		second := create(t, r, agent, obj, later)
		create(t, r, r.World.Agent(t), obj, later) // another agent's
		if _, ok, err := r.Requests.ClaimDiagnostic(ctx, claimed.ID); !ok || err != nil {
			t.Fatal(ok, err)
		}
		got, err := r.Requests.PendingDiagnostics(ctx, agent)
		if err != nil || len(got) != 2 || got[0].ID != first.ID || got[1].ID != second.ID {
			t.Fatalf("pending %+v %v", got, err)
		}
	})

	t.Run("claim takes a pending request once", func(t *testing.T) {
		r, agent, obj := setup(t)
		req := create(t, r, agent, obj, later)
		got, ok, err := r.Requests.ClaimDiagnostic(ctx, req.ID)
		if err != nil || !ok || got.Status != diagnostic.Claimed || got.ClaimedAt == nil {
			t.Fatalf("claim %+v %v %v", got, ok, err)
		}
		if _, ok, err := r.Requests.ClaimDiagnostic(ctx, req.ID); ok || err != nil {
			t.Fatalf("second claim: %v %v", ok, err)
		}
		expired := create(t, r, agent, obj, time.Now().Add(-time.Second))
		if _, ok, err := r.Requests.ClaimDiagnostic(ctx, expired.ID); ok || err != nil {
			t.Fatalf("expired claim: %v %v", ok, err)
		}
		if _, ok, err := r.Requests.ClaimDiagnostic(ctx, uuid.New()); ok || err != nil {
			t.Fatalf("unknown claim: %v %v", ok, err)
		}
	})

	t.Run("complete stores one result for a claimed request", func(t *testing.T) {
		r, agent, obj := setup(t)
		req := create(t, r, agent, obj, later)
		res := diagnostic.Result{RequestID: req.ID, PodStatuses: "[]", Events: "[]", CollectedAt: time.Now()}
		if ok, err := r.Requests.CompleteDiagnostic(ctx, &res, diagnostic.Completed); ok || err != nil {
			t.Fatalf("completing a pending request: %v %v", ok, err)
		}
		if _, ok, _ := r.Requests.ClaimDiagnostic(ctx, req.ID); !ok {
			t.Fatal("claim")
		}
		msg := "no pods"
		res.Error = &msg
		if ok, err := r.Requests.CompleteDiagnostic(ctx, &res, diagnostic.Failed); !ok || err != nil || res.ID == uuid.Nil {
			t.Fatalf("complete: %v %v %+v", ok, err, res)
		}
		again := res
		if ok, err := r.Requests.CompleteDiagnostic(ctx, &again, diagnostic.Completed); ok || err != nil {
			t.Fatalf("second completion: %v %v", ok, err)
		}
		got, _ := r.Requests.GetDiagnostic(ctx, req.ID)
		stored, err := r.Requests.GetDiagnosticResult(ctx, req.ID)
		if got.Status != diagnostic.Failed || got.CompletedAt == nil || err != nil || stored == nil ||
			stored.ID != res.ID || *stored.Error != msg || stored.PodStatuses != "[]" {
			t.Fatalf("after completion: %+v %+v %v", got, stored, err)
		}
	})

	t.Run("recent is newest first with results, at most limit", func(t *testing.T) {
		r, agent, obj := setup(t)
		old := create(t, r, agent, obj, later)
		mid := create(t, r, agent, obj, later)
		last := create(t, r, agent, obj, later)
		if _, ok, _ := r.Requests.ClaimDiagnostic(ctx, mid.ID); !ok {
			t.Fatal("claim")
		}
		res := diagnostic.Result{RequestID: mid.ID, PodStatuses: "{}", Events: "{}", CollectedAt: time.Now()}
		if ok, err := r.Requests.CompleteDiagnostic(ctx, &res, diagnostic.Completed); !ok || err != nil {
			t.Fatal(ok, err)
		}
		reqs, results, err := r.Requests.RecentDiagnostics(ctx, agent, 2)
		if err != nil || len(reqs) != 2 || reqs[0].ID != last.ID || reqs[1].ID != mid.ID {
			t.Fatalf("recent %+v %v", reqs, err)
		}
		if len(results) != 1 || results[0].RequestID != mid.ID {
			t.Fatalf("results %+v", results)
		}
		all, _, _ := r.Requests.RecentDiagnostics(ctx, agent, 10)
		if len(all) != 3 || all[2].ID != old.ID {
			t.Fatalf("all %+v", all)
		}
		none, noRes, err := r.Requests.RecentDiagnostics(ctx, uuid.New(), 10)
		if err != nil || none == nil || noRes == nil || len(none)+len(noRes) != 0 {
			t.Fatalf("unknown agent: %#v %#v %v (want empty, non-nil)", none, noRes, err)
		}
	})

	t.Run("existence checks see live agents and objects", func(t *testing.T) {
		r, agent, obj := setup(t)
		for name, c := range map[string]struct {
			fn   func(context.Context, uuid.UUID) (bool, error)
			id   uuid.UUID
			want bool
		}{
			"agent": {r.Refs.AgentExists, agent, true}, "unknown agent": {r.Refs.AgentExists, uuid.New(), false},
			"object": {r.Refs.DeploymentObjectExists, obj, true}, "unknown object": {r.Refs.DeploymentObjectExists, uuid.New(), false},
		} {
			if got, err := c.fn(ctx, c.id); got != c.want || err != nil {
				t.Errorf("%s: %v %v", name, got, err)
			}
		}
	})
}
