package workorders_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/app/workorders/workorderstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
)

func newOrders() (*workorders.Service, *workorderstest.Memory) {
	m := workorderstest.NewMemory()
	r := workorders.Repos{Tx: m, Journal: m, Orders: m, Claims: m, Log: m, Agents: m, Retries: m}
	return workorders.NewService(r, nil), m
}

func tmpl() workorder.Template {
	return workorder.Template{WorkType: "job", YAMLContent: "kind: Job\n", MaxRetries: 1, BackoffSeconds: 60, ClaimTimeoutSeconds: 60}
}

func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want kind %v", err, kind)
	}
	var de *domain.Error
	if msg != "" && (!errors.As(err, &de) || de.Msg != msg) {
		t.Fatalf("error %v, want message %q", err, msg)
	}
}

func TestCreateRules(t *testing.T) {
	ctx := context.Background()
	ghost := uuid.New()
	cases := []struct {
		name string
		p    identity.Principal
		in   func(agent uuid.UUID) workorders.CreateInput
		kind error
		msg  string
	}{
		{"admin targets an agent", identity.Admin, func(a uuid.UUID) workorders.CreateInput {
			return workorders.CreateInput{Template: tmpl(), Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a}}}
		}, nil, ""},
		{"an agent may not", identity.Agent(uuid.New()), func(a uuid.UUID) workorders.CreateInput {
			return workorders.CreateInput{Template: tmpl(), Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a}}}
		}, domain.ErrForbidden, "Admin access required"},
		{"unknown agent is 422 and creates nothing", identity.Admin, func(a uuid.UUID) workorders.CreateInput {
			return workorders.CreateInput{Template: tmpl(), Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a, ghost}}}
		}, domain.ErrUnprocessable, "Agent not found: " + ghost.String()},
		{"empty work type", identity.Admin, func(a uuid.UUID) workorders.CreateInput {
			t := tmpl()
			t.WorkType = ""
			return workorders.CreateInput{Template: t, Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a}}}
		}, domain.ErrInvalid, "Work type cannot be empty"},
		{"no targeting", identity.Admin, func(uuid.UUID) workorders.CreateInput {
			return workorders.CreateInput{Template: tmpl()}
		}, domain.ErrInvalid, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc, m := newOrders()
			a := m.AddAgent(true, nil, nil)
			w, err := svc.Create(ctx, tc.p, tc.in(a))
			if tc.kind != nil {
				wantErr(t, err, tc.kind, tc.msg)
				if all, _ := m.ListWorkOrders(ctx, workorders.ListFilter{}); len(all) != 0 || len(m.Events()) != 0 || len(m.Audits()) != 0 {
					t.Fatal("a refused create left an order, event or audit entry")
				}
				return
			}
			if err != nil || w.Status != workorder.StatusPending {
				t.Fatalf("create %+v, %v", w, err)
			}
			if ev := m.Events(); len(ev) != 1 || ev[0].Type != workorder.EventCreated {
				t.Fatalf("events %+v", ev)
			}
			if au := m.Audits(); len(au) != 1 || au[0].Action != workorder.ActionCreated {
				t.Fatalf("audit %+v", au)
			}
		})
	}
}

func TestAgentSide(t *testing.T) {
	ctx := context.Background()
	svc, m := newOrders()
	a := m.AddAgent(true, []string{"l"}, nil)
	b := m.AddAgent(true, []string{"l"}, nil)
	w, err := svc.Create(ctx, identity.Admin, workorders.CreateInput{Template: tmpl(), Targeting: workorder.Targeting{Labels: []string{"l"}}})
	if err != nil {
		t.Fatal(err)
	}

	_, err = svc.Pending(ctx, identity.Agent(b), a, "")
	wantErr(t, err, domain.ErrForbidden, "")
	_, err = svc.Pending(ctx, identity.Admin, uuid.New(), "")
	wantErr(t, err, domain.ErrNotFound, "Agent not found")
	if p, err := svc.Pending(ctx, identity.Agent(a), a, ""); err != nil || len(p) != 1 {
		t.Fatalf("pending %v, %v", p, err)
	}

	_, err = svc.Claim(ctx, identity.Agent(b), w.ID, a)
	wantErr(t, err, domain.ErrForbidden, "")
	_, err = svc.Claim(ctx, identity.Admin, w.ID, uuid.Nil)
	wantErr(t, err, domain.ErrInvalid, "agent_id is required")
	c, err := svc.Claim(ctx, identity.Agent(a), w.ID, uuid.Nil) // an agent claims for itself
	if err != nil || c.ClaimedBy == nil || *c.ClaimedBy != a {
		t.Fatalf("claim %+v, %v", c, err)
	}
	_, err = svc.Claim(ctx, identity.Agent(b), w.ID, b)
	wantErr(t, err, domain.ErrNotFound, "")
	if ev := m.Events(); ev[len(ev)-1].Type != workorder.EventClaimed {
		t.Fatalf("events %+v", ev)
	}

	pct := 101
	_, err = svc.Progress(ctx, identity.Agent(a), w.ID, workorders.ProgressInput{Percent: &pct})
	wantErr(t, err, domain.ErrInvalid, "percent must be between 0 and 100")
	_, err = svc.Progress(ctx, identity.Admin, w.ID, workorders.ProgressInput{})
	wantErr(t, err, domain.ErrForbidden, "")
	pct = 10
	_, err = svc.Progress(ctx, identity.Agent(b), w.ID, workorders.ProgressInput{Percent: &pct})
	wantErr(t, err, domain.ErrConflict, "Work order is not claimed by this agent")
	events := len(m.Events())
	if p, err := svc.Progress(ctx, identity.Agent(a), w.ID, workorders.ProgressInput{Percent: &pct}); err != nil || *p.ProgressPercent != 10 {
		t.Fatalf("progress %+v, %v", p, err)
	}
	if len(m.Events()) != events {
		t.Fatal("progress emitted an event")
	}

	done, err := svc.Complete(ctx, identity.Agent(a), w.ID, workorders.CompleteInput{Success: true})
	if err != nil || done.Log == nil || !done.Log.Success {
		t.Fatalf("complete %+v, %v", done, err)
	}
	// A finished order still answers GET, synthesised from the log.
	got, err := svc.Get(ctx, identity.Admin, w.ID)
	if err != nil || got.ID != w.ID || got.Status != workorder.StatusCompleted {
		t.Fatalf("get finished %+v, %v", got, err)
	}
	_, err = svc.Get(ctx, identity.Admin, uuid.New())
	wantErr(t, err, domain.ErrNotFound, "Work order not found")
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	svc, m := newOrders()
	a := m.AddAgent(true, nil, nil)
	w, _ := svc.Create(ctx, identity.Admin, workorders.CreateInput{Template: tmpl(), Targeting: workorder.Targeting{AgentIDs: []uuid.UUID{a}}})
	wantErr(t, svc.Cancel(ctx, identity.Agent(a), w.ID), domain.ErrForbidden, "")
	if err := svc.Cancel(ctx, identity.Admin, w.ID); err != nil {
		t.Fatal(err)
	}
	if ev := m.Events(); ev[len(ev)-1].Type != workorder.EventCancelled {
		t.Fatalf("events %+v", ev)
	}
	wantErr(t, svc.Cancel(ctx, identity.Admin, w.ID), domain.ErrNotFound, "")
	wantErr(t, svc.Active(ctx, identity.Admin, w.ID), domain.ErrNotFound, "")
}

func TestLogRules(t *testing.T) {
	ctx := context.Background()
	svc, _ := newOrders()
	neg := -1
	_, err := svc.Log(ctx, identity.Admin, workorders.LogFilter{Limit: &neg})
	wantErr(t, err, domain.ErrInvalid, "limit must not be negative")
	_, err = svc.Log(ctx, identity.Agent(uuid.New()), workorders.LogFilter{})
	wantErr(t, err, domain.ErrForbidden, "")
	_, err = svc.LogEntry(ctx, identity.Admin, uuid.New())
	wantErr(t, err, domain.ErrNotFound, "")
}
