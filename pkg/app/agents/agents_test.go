package agents_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/agents/agentstest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
	"github.com/brokkr-go/brokkr/pkg/app/stacks/stackstest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

type issuer struct {
	n   int
	err error
}

func (i *issuer) Issue(context.Context) (secret.String, string, error) {
	if i.err != nil {
		return "", "", i.err
	}
	i.n++
	return secret.String("pak-" + string(rune('0'+i.n))), "hash-" + string(rune('0'+i.n)), nil
}

type invalidator struct{ hashes []string }

func (v *invalidator) Invalidate(_ context.Context, hashes ...string) error {
	v.hashes = append(v.hashes, hashes...)
	return nil
}

type notifier struct {
	mu    sync.Mutex
	agent []uuid.UUID
	acked []uuid.UUID
	notes []string
}

func (n *notifier) AgentChanged(_ context.Context, id uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.agent = append(n.agent, id)
}

func (n *notifier) ObjectAcknowledged(_ context.Context, _, obj uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.acked = append(n.acked, obj)
}

func (n *notifier) Noted(_ context.Context, what string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, what)
}

type fixture struct {
	svc    *agents.Service
	labels *agents.Labels
	mem    *agentstest.Memory
	j      *journaltest.Journal
	paks   *issuer
	inval  *invalidator
	notes  *notifier
	deps   stackstest.DependedObjects
}

func newFixture() fixture {
	mem := agentstest.NewMemory()
	j := &journaltest.Journal{}
	f := fixture{mem: mem, j: j, paks: &issuer{}, inval: &invalidator{}, notes: &notifier{}, deps: stackstest.DependedObjects{}}
	f.svc = agents.NewService(agents.Repos{Tx: j, Journal: j, Agents: mem, Targets: mem, Events: mem, Objects: mem,
		Dependencies: f.deps, Registrations: mem, Generators: mem},
		f.paks, f.inval, f.notes)
	f.labels = agents.NewLabels(f.svc, j, j, labelingtest.NewMemory(true))
	return f
}

func (f fixture) agent(t *testing.T, name string) agent.Agent {
	t.Helper()
	a, _, err := f.svc.Create(context.Background(), identity.Admin, agents.CreateInput{Name: name, ClusterName: "c"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var system = identity.Principal{Role: identity.RoleSystem}

func TestCreate(t *testing.T) {
	cases := []struct {
		name    string
		p       identity.Principal
		in      agents.CreateInput
		issue   error
		wantErr error
	}{
		{name: "admin", p: identity.Admin, in: agents.CreateInput{Name: "a", ClusterName: "c"}},
		{name: "system (CLI)", p: system, in: agents.CreateInput{Name: "a", ClusterName: "c"}},
		{name: "agent refused", p: identity.Agent(uuid.New()), in: agents.CreateInput{Name: "a", ClusterName: "c"}, wantErr: domain.ErrForbidden},
		{name: "generator refused", p: identity.Generator(uuid.New()), in: agents.CreateInput{Name: "a", ClusterName: "c"}, wantErr: domain.ErrForbidden},
		{name: "empty name", p: identity.Admin, in: agents.CreateInput{Name: " ", ClusterName: "c"}, wantErr: domain.ErrInvalid},
		{name: "empty cluster", p: identity.Admin, in: agents.CreateInput{Name: "a"}, wantErr: domain.ErrInvalid},
		{name: "name too long", p: identity.Admin, in: agents.CreateInput{Name: string(make([]byte, 256)), ClusterName: "c"}, wantErr: domain.ErrInvalid},
		{name: "auth service down", p: identity.Admin, in: agents.CreateInput{Name: "a", ClusterName: "c"}, issue: errors.New("down"), wantErr: domain.ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			f.paks.err = tc.issue
			a, pak, err := f.svc.Create(context.Background(), tc.p, tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if len(f.j.Audits()) != 0 || len(f.j.Events()) != 0 {
					t.Fatal("a refused create left a trace")
				}
				return
			}
			if err != nil || pak.Reveal() == "" || a.Status != agent.StatusActive || a.PakHash != "hash-1" {
				t.Fatalf("Create = %+v, %q, %v", a, pak.Reveal(), err)
			}
			if !slices.Equal(f.j.Actions(), []string{audit.ActionAgentCreated}) ||
				!slices.Equal(f.j.EventTypes(), []string{event.AgentRegistered}) {
				t.Fatalf("journal = %v %v", f.j.Actions(), f.j.EventTypes())
			}
		})
	}
	t.Run("duplicate name and cluster", func(t *testing.T) {
		f := newFixture()
		f.agent(t, "a")
		_, _, err := f.svc.Create(context.Background(), identity.Admin, agents.CreateInput{Name: "a", ClusterName: "c"})
		if !errors.Is(err, domain.ErrConflict) || err.Error() != "An agent with this name and cluster_name already exists" {
			t.Fatalf("err = %v", err)
		}
	})
}

// POST /agents' generator_ids: checked before anything is created,
// registered in the creating transaction; GET /agents is tenant-scoped for
// generators (0.9.1).
func TestCreateWithGeneratorsAndScopedList(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	g1, g2 := f.mem.AddGenerator(), f.mem.AddGenerator()
	a, _, err := f.svc.Create(ctx, identity.Admin, agents.CreateInput{Name: "a", ClusterName: "c",
		GeneratorIDs: []uuid.UUID{g1, g1, generator.SystemID}})
	if err != nil {
		t.Fatal(err)
	}
	b := f.agent(t, "b")
	_, _, err = f.svc.Create(ctx, identity.Admin, agents.CreateInput{Name: "x", ClusterName: "c", GeneratorIDs: []uuid.UUID{g2, uuid.New()}})
	if !errors.Is(err, domain.ErrInvalid) || domain.CodeOf(err) != agents.CodeInvalidGeneratorID {
		t.Fatalf("unknown generator id: %v (code %q)", err, domain.CodeOf(err))
	}
	if f.paks.n != 2 {
		t.Fatalf("a PAK was issued for the refused create (%d issued)", f.paks.n)
	}
	for _, tc := range []struct {
		name string
		p    identity.Principal
		want []uuid.UUID
		code string
	}{
		{"admin sees the fleet", identity.Admin, []uuid.UUID{a.ID, b.ID}, ""},
		{"generator sees its registered agents", identity.Generator(g1), []uuid.UUID{a.ID}, ""},
		{"generator without agents", identity.Generator(g2), []uuid.UUID{}, ""},
		{"agent refused", identity.Agent(a.ID), nil, agents.CodeGeneratorRequired},
		{"system generator is no tenant", identity.Generator(generator.SystemID), nil, agents.CodeNotATenant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := f.svc.List(ctx, tc.p)
			if tc.code != "" {
				if !errors.Is(err, domain.ErrForbidden) || domain.CodeOf(err) != tc.code {
					t.Fatalf("List = %v (code %q), want 403 %s", err, domain.CodeOf(err), tc.code)
				}
				return
			}
			ids := []uuid.UUID{}
			for _, x := range list {
				ids = append(ids, x.ID)
			}
			if err != nil || !slices.Equal(ids, tc.want) {
				t.Fatalf("List = %v, %v; want %v", ids, err, tc.want)
			}
		})
	}
}

func TestReadAccess(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	other := f.agent(t, "b")
	cases := []struct {
		name string
		p    identity.Principal
		id   uuid.UUID
		want error
	}{
		{"admin", identity.Admin, a.ID, nil},
		{"itself", identity.Agent(a.ID), a.ID, nil},
		{"another agent", identity.Agent(other.ID), a.ID, domain.ErrForbidden},
		{"generator", identity.Generator(uuid.New()), a.ID, domain.ErrForbidden},
		{"unknown agent", identity.Admin, uuid.New(), domain.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Get(ctx, tc.p, tc.id)
			_, lerr := f.labels.Labels(ctx, tc.p, tc.id)
			_, terr := f.svc.Targets(ctx, tc.p, tc.id)
			_, eerr := f.svc.Events(ctx, tc.p, tc.id)
			for _, got := range []error{err, lerr, terr, eerr} {
				if (tc.want == nil && got != nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
	if _, err := f.svc.List(ctx, identity.Agent(a.ID)); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("agent List: %v", err)
	}
	if list, err := f.svc.List(ctx, identity.Admin); err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	if _, err := f.svc.Search(ctx, identity.Generator(uuid.New()), "", ""); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator before validation: %v", err)
	}
	if _, err := f.svc.Search(ctx, identity.Admin, "a", ""); !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("missing cluster: %v", err)
	}
	if got, err := f.svc.Search(ctx, identity.Agent(a.ID), "a", "c"); err != nil || got.ID != a.ID {
		t.Fatalf("self search = %+v, %v", got, err)
	}
	if _, err := f.svc.Search(ctx, identity.Agent(uuid.New()), "a", "c"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("another agent's search: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	str := func(s string) *string { return &s }
	cases := []struct {
		name    string
		self    bool
		in      agents.UpdateInput
		want    error
		wantSt  string
		wantMsg string
	}{
		{name: "admin deactivates (case-insensitive)", in: agents.UpdateInput{Status: str(" inactive ")}, wantSt: agent.StatusInactive},
		{name: "admin bad status", in: agents.UpdateInput{Status: str("PAUSED")}, want: domain.ErrInvalid},
		{name: "agent renames itself", self: true, in: agents.UpdateInput{Name: str("a2")}, wantSt: agent.StatusActive},
		{name: "agent may not change its status", self: true, in: agents.UpdateInput{Status: str("INACTIVE")}, want: domain.ErrForbidden,
			wantMsg: "Agents cannot change their own status"},
		{name: "empty name", in: agents.UpdateInput{Name: str("")}, want: domain.ErrInvalid},
		{name: "rename onto another", in: agents.UpdateInput{Name: str("b")}, want: domain.ErrConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			a := f.agent(t, "a")
			f.agent(t, "b")
			p := identity.Admin
			if tc.self {
				p = identity.Agent(a.ID)
			}
			before := len(f.j.Audits())
			got, err := f.svc.Update(ctx, p, a.ID, tc.in)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || (tc.wantMsg != "" && err.Error() != tc.wantMsg) {
					t.Fatalf("err = %v, want %v %q", err, tc.want, tc.wantMsg)
				}
				if len(f.j.Audits()) != before || len(f.notes.agent) != 0 {
					t.Fatal("a refused update left a trace")
				}
				return
			}
			if err != nil || got.Status != tc.wantSt {
				t.Fatalf("Update = %+v, %v", got, err)
			}
			if f.j.Actions()[before] != audit.ActionAgentUpdated || !slices.Equal(f.notes.agent, []uuid.UUID{a.ID}) {
				t.Fatalf("audit %v, notes %v", f.j.Actions(), f.notes.agent)
			}
		})
	}
}

func TestDeleteAndRotate(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	if err := f.svc.Delete(ctx, identity.Agent(a.ID), a.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("self delete: %v", err)
	}
	// Rotation by the agent itself: the old hash is invalidated.
	got, pak, err := f.svc.RotatePAK(ctx, identity.Agent(a.ID), a.ID)
	if err != nil || got.PakHash != "hash-2" || pak.Reveal() == "" {
		t.Fatalf("RotatePAK = %+v, %v", got, err)
	}
	if !slices.Equal(f.inval.hashes, []string{"hash-1"}) {
		t.Fatalf("invalidated %v", f.inval.hashes)
	}
	if _, _, err := f.svc.RotatePAK(ctx, identity.Generator(uuid.New()), a.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("generator rotation: %v", err)
	}
	if _, _, err := f.svc.RotatePAK(ctx, identity.Admin, uuid.New()); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown agent rotation: %v", err)
	}
	if err := f.svc.Delete(ctx, identity.Admin, a.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.inval.hashes, []string{"hash-1", "hash-2"}) {
		t.Fatalf("the deleted agent's PAK was not invalidated: %v", f.inval.hashes)
	}
	if !slices.Contains(f.j.EventTypes(), event.AgentDeregistered) || !slices.Contains(f.j.Actions(), audit.ActionAgentDeleted) {
		t.Fatalf("journal %v %v", f.j.Actions(), f.j.EventTypes())
	}
	if err := f.svc.Delete(ctx, identity.Admin, a.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	if _, err := f.svc.Heartbeat(ctx, identity.Admin, a.ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("admin heartbeat: %v", err)
	}
	if _, err := f.svc.Heartbeat(ctx, identity.Agent(a.ID), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Heartbeat(ctx, identity.Agent(a.ID), a.ID); err != nil {
		t.Fatal(err)
	}
	// Only the first sighting is pushed to live views; steady beats are not.
	if !slices.Equal(f.notes.notes, []string{"heartbeat"}) {
		t.Fatalf("notes = %v", f.notes.notes)
	}
}

func TestTargets(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	st := f.mem.AddStack(nil)
	if _, err := f.svc.AddTarget(ctx, identity.Agent(a.ID), a.ID, st); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("self target: %v", err)
	}
	if _, err := f.svc.AddTarget(ctx, identity.Admin, uuid.New(), st); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
	if _, err := f.svc.AddTarget(ctx, identity.Admin, a.ID, uuid.New()); !errors.Is(err, domain.ErrUnprocessable) {
		t.Fatalf("unknown stack: %v", err)
	}
	if _, err := f.svc.AddTarget(ctx, identity.Admin, a.ID, st); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.AddTarget(ctx, identity.Admin, a.ID, st); !errors.Is(err, domain.ErrConflict) || err.Error() != "Target already exists" {
		t.Fatalf("duplicate: %v", err)
	}
	stacks, err := f.svc.Stacks(ctx, identity.Agent(a.ID), a.ID)
	if err != nil || len(stacks) != 1 || stacks[0].ID != st {
		t.Fatalf("Stacks = %+v, %v", stacks, err)
	}
	if err := f.svc.RemoveTarget(ctx, identity.Admin, a.ID, st); err != nil {
		t.Fatal(err)
	}
	want := []string{audit.ActionAgentCreated, audit.ActionTargetAdded, audit.ActionTargetRemoved}
	if !slices.Equal(f.j.Actions(), want) || len(f.notes.agent) != 2 {
		t.Fatalf("audit %v, notes %v", f.j.Actions(), f.notes.agent)
	}
}

func TestLabels(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	a := f.agent(t, "a")
	if _, err := f.labels.AddLabel(ctx, identity.Agent(a.ID), a.ID, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("an agent labels itself: %v", err)
	}
	if _, err := f.labels.AddLabel(ctx, identity.Admin, a.ID, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.labels.AddAnnotation(ctx, identity.Admin, a.ID, "k", "v"); err != nil {
		t.Fatal(err)
	}
	_, err := f.labels.AddAnnotation(ctx, identity.Admin, a.ID, "k", "w")
	if !errors.Is(err, domain.ErrConflict) || err.Error() != "Annotation key already exists" {
		t.Fatalf("second value of a key: %v", err)
	}
	if got, err := f.labels.Labels(ctx, identity.Agent(a.ID), a.ID); err != nil || len(got) != 1 || got[0].OwnerID != a.ID {
		t.Fatalf("Labels = %+v, %v", got, err)
	}
	// Every change wakes the agent's long-poll; audited on the agent.
	if !slices.Equal(f.notes.agent, []uuid.UUID{a.ID, a.ID}) {
		t.Fatalf("notes = %v", f.notes.agent)
	}
	last := f.j.Audits()[len(f.j.Audits())-1]
	if last.Action != audit.ActionAnnotationAdded || last.ResourceType != "agent" || *last.ResourceID != a.ID {
		t.Fatalf("audit = %+v", last)
	}
}

func TestReportEvent(t *testing.T) {
	ctx := context.Background()
	msg := "boom"
	cases := []struct {
		name      string
		admin     bool
		targeted  bool
		marker    bool
		in        agents.EventInput
		want      error
		wantEvent string
		acked     bool
	}{
		{name: "success applies", targeted: true, in: agents.EventInput{EventType: "DEPLOY", Status: "success"},
			wantEvent: event.DeploymentApplied, acked: true},
		{name: "failure", targeted: true, in: agents.EventInput{EventType: "DEPLOY", Status: "FAILURE", Message: &msg},
			wantEvent: event.DeploymentFailed},
		{name: "drift", targeted: true, in: agents.EventInput{EventType: "DRIFT", Status: "FAILURE"}, wantEvent: event.DeploymentDrifted},
		{name: "deletion marker done", targeted: true, marker: true, in: agents.EventInput{EventType: "DEPLOY", Status: "SUCCESS"},
			wantEvent: event.DeploymentDeleted, acked: true},
		{name: "another tenant's object looks missing", in: agents.EventInput{EventType: "DEPLOY", Status: "SUCCESS"},
			want: domain.ErrUnprocessable},
		{name: "the admin may report on any object", admin: true, in: agents.EventInput{EventType: "DEPLOY", Status: "SUCCESS"},
			wantEvent: event.DeploymentApplied, acked: true},
		{name: "event type required", targeted: true, in: agents.EventInput{Status: "SUCCESS"}, want: domain.ErrInvalid},
		{name: "status too long", targeted: true, in: agents.EventInput{EventType: "DEPLOY", Status: "SUCCESSFULLY"}, want: domain.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			a := f.agent(t, "a")
			st := f.mem.AddStack(nil)
			obj := f.mem.AddObject(st, tc.marker)
			if tc.targeted {
				if _, err := f.svc.AddTarget(ctx, identity.Admin, a.ID, st); err != nil {
					t.Fatal(err)
				}
			}
			p := identity.Agent(a.ID)
			if tc.admin {
				p = identity.Admin
			}
			in := tc.in
			in.DeploymentObjectID = obj
			e, err := f.svc.ReportEvent(ctx, p, a.ID, in)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if slices.Contains(f.j.Actions(), audit.ActionAgentEventCreated) || len(f.notes.acked) != 0 {
					t.Fatal("a refused report left a trace")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if types := f.j.EventTypes(); types[len(types)-1] != tc.wantEvent {
				t.Fatalf("events %v, want %s last", types, tc.wantEvent)
			}
			if got := len(f.notes.acked) == 1 && f.notes.acked[0] == obj; got != tc.acked {
				t.Fatalf("acknowledged %v, want %v (status %q)", f.notes.acked, tc.acked, e.Status)
			}
		})
	}
	t.Run("a SUCCESS or FAILURE on a depended-on stack wakes the agent", func(t *testing.T) {
		for _, c := range []struct {
			status   string
			depended bool
			wake     bool
		}{{"SUCCESS", true, true}, {"FAILURE", true, true}, {"PENDING", true, false}, {"SUCCESS", false, false}} {
			f := newFixture()
			a := f.agent(t, "a")
			st := f.mem.AddStack(nil)
			obj := f.mem.AddObject(st, false)
			f.deps[obj] = c.depended
			if _, err := f.svc.AddTarget(ctx, identity.Admin, a.ID, st); err != nil {
				t.Fatal(err)
			}
			before := len(f.notes.agent)
			if _, err := f.svc.ReportEvent(ctx, identity.Agent(a.ID), a.ID,
				agents.EventInput{DeploymentObjectID: obj, EventType: "DEPLOY", Status: c.status}); err != nil {
				t.Fatal(err)
			}
			woken := f.notes.agent[before:]
			if got := len(woken) == 1 && woken[0] == a.ID; got != c.wake {
				t.Fatalf("%s, depended on %v: AgentChanged %v, want wake %v", c.status, c.depended, woken, c.wake)
			}
		}
	})
	t.Run("agent_id in the body must match", func(t *testing.T) {
		f := newFixture()
		a := f.agent(t, "a")
		other := uuid.New()
		_, err := f.svc.ReportEvent(ctx, identity.Agent(a.ID), a.ID, agents.EventInput{AgentID: &other,
			DeploymentObjectID: uuid.New(), EventType: "DEPLOY", Status: "SUCCESS"})
		if !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestEventScope(t *testing.T) {
	ctx := context.Background()
	f := newFixture()
	gen := uuid.New()
	a, b := f.agent(t, "a"), f.agent(t, "b")
	mine, theirs := f.mem.AddStack(&gen), f.mem.AddStack(nil)
	o1, o2 := f.mem.AddObject(mine, false), f.mem.AddObject(theirs, false)
	for _, x := range []struct {
		agent, stack, obj uuid.UUID
	}{{a.ID, mine, o1}, {b.ID, theirs, o2}} {
		if _, err := f.svc.AddTarget(ctx, identity.Admin, x.agent, x.stack); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.ReportEvent(ctx, identity.Agent(x.agent), x.agent,
			agents.EventInput{DeploymentObjectID: x.obj, EventType: "DEPLOY", Status: "SUCCESS"}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(p identity.Principal) int {
		es, err := f.svc.AllEvents(ctx, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	if count(identity.Admin) != 2 || count(identity.Agent(a.ID)) != 1 || count(identity.Generator(gen)) != 1 ||
		count(identity.Generator(uuid.New())) != 0 {
		t.Fatal("AllEvents is not scoped to the caller")
	}
	if _, err := f.svc.AllEvents(ctx, system, nil); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("system: %v", err)
	}
	all, _ := f.svc.AllEvents(ctx, identity.Agent(b.ID), nil)
	if _, err := f.svc.GetEvent(ctx, identity.Generator(gen), all[0].ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("a generator reads another stack's event: %v", err)
	}
	if _, err := f.svc.GetEvent(ctx, identity.Agent(a.ID), all[0].ID); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("an agent reads another agent's event: %v", err)
	}
	if _, err := f.svc.GetEvent(ctx, identity.Agent(b.ID), all[0].ID); err != nil {
		t.Fatal(err)
	}
}
