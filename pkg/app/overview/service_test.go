package overview_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/overview/overviewtest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// stacks lets everyone read stack `visible` and its object, nothing else.
type stacks struct{ visible, object uuid.UUID }

func (s stacks) Get(_ context.Context, _ identity.Principal, id uuid.UUID) (stack.Stack, error) {
	if id != s.visible {
		return stack.Stack{}, domain.NotFound("Stack not found")
	}
	return stack.Stack{ID: id}, nil
}

func (s stacks) GetDeploymentObject(_ context.Context, _ identity.Principal, id uuid.UUID) (stack.DeploymentObject, error) {
	if id != s.object {
		return stack.DeploymentObject{}, domain.NotFound("Deployment object not found")
	}
	return stack.DeploymentObject{ID: id}, nil
}

func TestFleetRules(t *testing.T) {
	ctx := context.Background()
	m := overviewtest.NewMemory()
	five := 5 * time.Second
	for i, name := range []string{"web-1", "web-2", "db-1"} {
		m.Agent(t, overviewtest.Agent{Name: name, Cluster: "c", HeartbeatAgo: &five, CreatedAgo: time.Duration(i) * time.Hour,
			Labels: []string{"tier:" + name[:2]}})
	}
	svc := overview.NewService(m, stacks{})
	for _, c := range []struct {
		name    string
		caller  identity.Principal
		q       overview.FleetQuery
		want    error
		rows    int
		matched int
	}{
		{"defaults", identity.Admin, overview.FleetQuery{}, nil, 3, 3},
		{"agent", identity.Agent(uuid.New()), overview.FleetQuery{}, domain.ErrForbidden, 0, 0},
		{"generator", identity.Generator(uuid.New()), overview.FleetQuery{}, domain.ErrForbidden, 0, 0},
		{"negative offset", identity.Admin, overview.FleetQuery{Offset: -1}, domain.ErrInvalid, 0, 0},
		{"unknown sort", identity.Admin, overview.FleetQuery{Sort: "size"}, domain.ErrInvalid, 0, 0},
		{"unknown state", identity.Admin, overview.FleetQuery{State: "asleep"}, domain.ErrInvalid, 0, 0},
		{"long filter", identity.Admin, overview.FleetQuery{Text: strings.Repeat("x", 256)}, domain.ErrInvalid, 0, 0},
		{"text counts the matches", identity.Admin, overview.FleetQuery{Text: " web ", Limit: 1}, nil, 1, 2},
		{"label counts the matches", identity.Admin, overview.FleetQuery{Label: "tier:db"}, nil, 1, 1},
		{"state uses the counts", identity.Admin, overview.FleetQuery{State: overview.StateOnline, Limit: 2}, nil, 2, 3},
		{"limit is capped", identity.Admin, overview.FleetQuery{Limit: 10_000}, nil, 3, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			page, err := svc.Fleet(ctx, c.caller, c.q)
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				return
			}
			if err != nil || len(page.Rows) != c.rows || page.Matched != c.matched || page.Counts.Total != 3 {
				t.Fatalf("page %d rows, matched %d, counts %+v, err %v", len(page.Rows), page.Matched, page.Counts, err)
			}
			if page.Query.Limit > overview.MaxLimit || page.Query.Sort == "" || page.Query.StaleAfter <= 0 {
				t.Fatalf("query not normalised: %+v", page.Query)
			}
		})
	}
}

func TestViewsCheckAccess(t *testing.T) {
	ctx := context.Background()
	m := overviewtest.NewMemory()
	st := stacks{visible: uuid.New(), object: uuid.New()}
	m.SetStackObjects(st.visible, []overview.ObjectRow{{SequenceID: 3}, {SequenceID: 2}, {SequenceID: 1}})
	m.SetObjectAgents(st.object, []overview.ObjectAgent{{AgentName: "a"}})
	svc := overview.NewService(m, st)
	gen := identity.Generator(uuid.New())
	rows, total, err := svc.StackObjects(ctx, gen, st.visible, 2, 1)
	if err != nil || total != 3 || len(rows) != 2 || rows[0].SequenceID != 2 {
		t.Fatalf("objects %+v %d %v", rows, total, err)
	}
	if _, _, err := svc.StackObjects(ctx, gen, uuid.New(), 0, 0); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a stack the caller cannot read: %v", err)
	}
	if _, _, err := svc.StackObjects(ctx, gen, st.visible, -1, 0); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("negative limit: %v", err)
	}
	if _, err := svc.ObjectAgents(ctx, gen, st.object); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("object agents are the admin's: %v", err)
	}
	if got, err := svc.ObjectAgents(ctx, identity.Admin, st.object); err != nil || len(got) != 1 {
		t.Fatalf("object agents %+v %v", got, err)
	}
	if _, err := svc.ObjectAgents(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown object: %v", err)
	}
	if _, err := svc.AgentStacks(ctx, gen, uuid.New()); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent stacks are the admin's: %v", err)
	}
}
