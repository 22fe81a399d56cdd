package deploymenthealth_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth/deploymenthealthtest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/stacks/stackstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	dh "github.com/brokkr-go/brokkr/pkg/domain/health"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

type fixture struct {
	svc     *deploymenthealth.Service
	mem     *deploymenthealthtest.Memory
	journal *journaltest.Journal
	agent   uuid.UUID
	stack   uuid.UUID
	object  uuid.UUID
	deps    stackstest.DependedObjects
	woken   *[]uuid.UUID
}

type wakeups struct{ agents *[]uuid.UUID }

func (w wakeups) AgentChanged(_ context.Context, id uuid.UUID) { *w.agents = append(*w.agents, id) }

func newFixture(t *testing.T) fixture {
	m := deploymenthealthtest.NewMemory()
	j := &journaltest.Journal{}
	f := fixture{mem: m, journal: j, agent: m.Agent(t), stack: m.Stack(t)}
	f.object = m.Object(t, f.stack)
	m.Allow(f.agent, f.object)
	f.deps, f.woken = stackstest.DependedObjects{}, &[]uuid.UUID{}
	f.svc = deploymenthealth.NewService(deploymenthealth.Repos{Tx: j, Journal: j, Records: m, Refs: m, Permissions: m,
		Dependencies: f.deps}, wakeups{f.woken})
	return f
}

func TestReportHealthRules(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		caller  func(f fixture) identity.Principal
		reports func(f fixture) []deploymenthealth.Report
		want    error
		msg     string
	}{
		{"the agent itself", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Healthy}}
			}, nil, ""},
		{"admin on any object", func(fixture) identity.Principal { return identity.Admin },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Degraded}}
			}, nil, ""},
		{"another agent", func(fixture) identity.Principal { return identity.Agent(uuid.New()) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Healthy}}
			},
			domain.ErrForbidden, "Unauthorized"},
		{"a generator", func(fixture) identity.Principal { return identity.Generator(uuid.New()) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Healthy}}
			},
			domain.ErrForbidden, "Unauthorized"},
		{"unknown status", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: "fine"}}
			},
			domain.ErrInvalid, "deployment_objects[0].status"},
		{"missing object id", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(fixture) []deploymenthealth.Report { return []deploymenthealth.Report{{Status: dh.Healthy}} },
			domain.ErrInvalid, "deployment_objects[0].id is required"},
		{"summary not an object", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Healthy, Summary: json.RawMessage(`[1]`)}}
			}, domain.ErrInvalid, "deployment_objects[0].summary"},
		{"too many reports", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(f fixture) []deploymenthealth.Report {
				return slices.Repeat([]deploymenthealth.Report{{DeploymentObjectID: f.object, Status: dh.Healthy}}, deploymenthealth.MaxReports+1)
			}, domain.ErrInvalid, "at most 1000"},
		{"object of a stack the agent never had", func(f fixture) identity.Principal { return identity.Agent(f.agent) },
			func(f fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: uuid.New(), Status: dh.Healthy}}
			},
			domain.ErrUnprocessable, "Deployment object not found"},
		{"admin on a missing object", func(fixture) identity.Principal { return identity.Admin },
			func(fixture) []deploymenthealth.Report {
				return []deploymenthealth.Report{{DeploymentObjectID: uuid.New(), Status: dh.Healthy}}
			},
			domain.ErrUnprocessable, "Deployment object not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			err := f.svc.ReportHealth(ctx, c.caller(f), f.agent, c.reports(f))
			if c.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				recs, _ := f.mem.ObjectHealth(ctx, f.object)
				if len(recs) != 1 {
					t.Fatalf("stored %d records", len(recs))
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
			if recs, _ := f.mem.ObjectHealth(ctx, f.object); len(recs) != 0 {
				t.Fatalf("a refused report stored %d records", len(recs))
			}
		})
	}
}

func TestReportHealthEmitsOnTransitionToFailing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	p := identity.Agent(f.agent)
	report := func(status string) {
		t.Helper()
		if err := f.svc.ReportHealth(ctx, p, f.agent, []deploymenthealth.Report{{DeploymentObjectID: f.object, Status: status,
			Summary: json.RawMessage(`"{\"pods_ready\": 0}"`), CheckedAt: time.Unix(1700000000, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	report(dh.Healthy)
	report(dh.Failing)
	report(dh.Failing) // still failing: no second event
	report(dh.Degraded)
	report(dh.Failing)
	if got := f.journal.EventTypes(); !slices.Equal(got, []string{event.DeploymentFailed, event.DeploymentFailed}) {
		t.Fatalf("events %v, want one per transition to failing", got)
	}
	ev := f.journal.Events()[0]
	if ev.Data["reason"] != "health" || ev.Data["agent_id"] != f.agent {
		t.Fatalf("payload %v", ev.Data)
	}
	recs, _ := f.mem.ObjectHealth(ctx, f.object)
	if string(recs[0].Summary) != `{"pods_ready":0}` {
		t.Fatalf("a summary sent as a JSON string is stored as the object: %s", recs[0].Summary)
	}
}

func TestReportHealthIsOneTransaction(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	err := f.svc.ReportHealth(ctx, identity.Agent(f.agent), f.agent, []deploymenthealth.Report{
		{DeploymentObjectID: f.object, Status: dh.Failing},
		{DeploymentObjectID: uuid.New(), Status: dh.Healthy}, // refused
	})
	if !errors.Is(err, domain.ErrUnprocessable) {
		t.Fatal(err)
	}
	if len(f.journal.Events()) != 0 || f.journal.Rollbacks != 1 {
		t.Fatalf("a refused batch commits nothing: events %v, rollbacks %d", f.journal.EventTypes(), f.journal.Rollbacks)
	}
}

func TestObjectAndStackHealth(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	second := f.mem.Object(t, f.stack)
	other := f.mem.Agent(t)
	for _, r := range []struct {
		agent, obj uuid.UUID
		status     string
	}{{f.agent, f.object, dh.Healthy}, {other, f.object, dh.Degraded}, {f.agent, second, dh.Failing}} {
		if err := f.svc.ReportHealth(ctx, identity.Admin, r.agent, []deploymenthealth.Report{{DeploymentObjectID: r.obj, Status: r.status}}); err != nil {
			t.Fatal(err)
		}
	}
	view, err := f.svc.ObjectHealth(ctx, identity.Admin, f.object)
	if err != nil || len(view.HealthRecords) != 2 || view.OverallStatus != dh.Degraded {
		t.Fatalf("object view %+v %v", view, err)
	}
	stack, err := f.svc.StackHealth(ctx, identity.Admin, f.stack)
	if err != nil || stack.OverallStatus != dh.Failing || len(stack.DeploymentObjects) != 2 {
		t.Fatalf("stack view %+v %v", stack, err)
	}
	if o := stack.DeploymentObjects[0]; o.ID != f.object || o.HealthyAgents != 1 || o.DegradedAgents != 1 || o.Status != dh.Degraded {
		t.Fatalf("first object %+v", o)
	}
	for name, err := range map[string]error{
		"object by agent": second2(f.svc.ObjectHealth(ctx, identity.Agent(f.agent), f.object)),
		"stack by agent":  second2(f.svc.StackHealth(ctx, identity.Agent(f.agent), f.stack)),
	} {
		if !errors.Is(err, domain.ErrForbidden) {
			t.Errorf("%s: %v, want forbidden", name, err)
		}
	}
	if _, err := f.svc.ObjectHealth(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown object: %v", err)
	}
	if _, err := f.svc.StackHealth(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown stack: %v", err)
	}
	empty, err := f.svc.StackHealth(ctx, identity.Admin, f.mem.Stack(t))
	if err != nil || empty.OverallStatus != dh.Unknown || empty.DeploymentObjects == nil {
		t.Errorf("a stack without reports: %+v %v", empty, err)
	}
}

func second2[T any](_ T, err error) error { return err }

// A report that makes a depended-on object healthy, or stops it being
// healthy, wakes the agent's target state once; other reports do not.
func TestReportHealthWakesDependents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	report := func(status string) []uuid.UUID {
		t.Helper()
		before := len(*f.woken)
		if err := f.svc.ReportHealth(ctx, identity.Agent(f.agent), f.agent,
			[]deploymenthealth.Report{{DeploymentObjectID: f.object, Status: status}}); err != nil {
			t.Fatal(err)
		}
		return (*f.woken)[before:]
	}
	if w := report(dh.Healthy); len(w) != 0 {
		t.Fatalf("not depended on: woke %v", w)
	}
	f.deps[f.object] = true
	for _, c := range []struct {
		status string
		wake   bool
	}{{dh.Healthy, false}, {dh.Degraded, true}, {dh.Failing, false}, {dh.Healthy, true}, {dh.Unknown, true}} {
		w := report(c.status)
		if got := len(w) == 1 && w[0] == f.agent; got != c.wake {
			t.Fatalf("report %s: woke %v, want %v", c.status, w, c.wake)
		}
	}
}
