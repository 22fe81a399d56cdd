package agentstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
)

// Subject is one implementation of the agent ports under test, with ways to
// seed what they refer to.
type Subject struct {
	Agents  agents.AgentRepository
	Targets agents.TargetRepository
	Events  agents.EventRepository
	// Registrations and Generators serve POST /agents' generator_ids.
	Registrations agents.Registrar
	Generators    agents.GeneratorChecker
	// NewGenerator makes a live generator.
	NewGenerator func(t *testing.T) uuid.UUID
	// NewStack makes a live stack owned by generator (nil: a system stack;
	// when non-nil the generator may have to be created too).
	NewStack func(t *testing.T, generator *uuid.UUID) uuid.UUID
	// NewObject makes a deployment object of the stack.
	NewObject func(t *testing.T, stackID uuid.UUID) uuid.UUID
}

func is(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: %v, want %v", what, err, kind)
	}
}

func create(t *testing.T, r agents.AgentRepository, name, cluster string) agent.Agent {
	t.Helper()
	a := agent.Agent{Name: name, ClusterName: cluster, Status: agent.StatusActive, PakHash: "hash-" + name}
	if err := r.CreateAgent(context.Background(), &a); err != nil {
		t.Fatalf("CreateAgent(%s/%s): %v", name, cluster, err)
	}
	return a
}

// RunAgentRepositoryContract checks AgentRepository.
func RunAgentRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	t.Run("create fills identity and keeps fields", func(t *testing.T) {
		r := newSubject(t).Agents
		a := create(t, r, "a", "c1")
		if a.ID == uuid.Nil || a.CreatedAt.IsZero() || a.DeletedAt != nil || a.LastHeartbeat != nil ||
			a.Status != agent.StatusActive || a.PakHash != "hash-a" {
			t.Fatalf("created %+v", a)
		}
		got, err := r.GetAgent(ctx, a.ID)
		if err != nil || got.ID != a.ID || got.Name != "a" || got.ClusterName != "c1" || got.PakHash != "hash-a" {
			t.Fatalf("GetAgent = %+v, %v", got, err)
		}
		found, err := r.FindAgent(ctx, "a", "c1")
		if err != nil || found.ID != a.ID {
			t.Fatalf("FindAgent = %+v, %v", found, err)
		}
		_, err = r.FindAgent(ctx, "a", "c2")
		is(t, err, domain.ErrNotFound, "FindAgent of another cluster")
		_, err = r.GetAgent(ctx, uuid.New())
		is(t, err, domain.ErrNotFound, "GetAgent unknown")
		// The stable code clients match on (docs/error-codes.md).
		if code := domain.CodeOf(err); code != "agent_not_found" {
			t.Fatalf("GetAgent unknown: code %q, want agent_not_found", code)
		}
	})
	t.Run("name and cluster are unique among live agents", func(t *testing.T) {
		r := newSubject(t).Agents
		a := create(t, r, "a", "c1")
		create(t, r, "a", "c2")
		dup := agent.Agent{Name: "a", ClusterName: "c1", Status: agent.StatusActive}
		is(t, r.CreateAgent(ctx, &dup), domain.ErrConflict, "duplicate")
		if _, err := r.DeleteAgent(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		create(t, r, "a", "c1") // the name is free again
		list, err := r.ListAgents(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("ListAgents = %+v, %v; want the two live agents", list, err)
		}
		for _, x := range list {
			if x.ID == a.ID {
				t.Fatal("a deleted agent is listed")
			}
		}
	})
	t.Run("update runs fn on the current row", func(t *testing.T) {
		r := newSubject(t).Agents
		a := create(t, r, "a", "c1")
		create(t, r, "b", "c1")
		got, err := r.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error {
			if x.Name != "a" {
				t.Errorf("fn saw %+v", x)
			}
			x.Name, x.Status, x.PakHash = "a2", agent.StatusInactive, "new"
			return nil
		})
		if err != nil || got.Name != "a2" || got.Status != agent.StatusInactive || got.PakHash != "new" || got.ID != a.ID {
			t.Fatalf("UpdateAgent = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		_, err = r.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error { x.Name = "zzz"; return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("fn's error: %v", err)
		}
		if now, _ := r.GetAgent(ctx, a.ID); now.Name != "a2" {
			t.Fatalf("a failed update changed the row: %+v", now)
		}
		_, err = r.UpdateAgent(ctx, a.ID, func(x *agent.Agent) error { x.Name = "b"; return nil })
		is(t, err, domain.ErrConflict, "rename onto another agent")
		_, err = r.UpdateAgent(ctx, uuid.New(), func(*agent.Agent) error { return nil })
		is(t, err, domain.ErrNotFound, "update unknown")
	})
	t.Run("delete", func(t *testing.T) {
		r := newSubject(t).Agents
		a := create(t, r, "a", "c1")
		got, err := r.DeleteAgent(ctx, a.ID)
		if err != nil || got.DeletedAt == nil || got.PakHash != "hash-a" {
			t.Fatalf("DeleteAgent = %+v, %v", got, err)
		}
		_, err = r.DeleteAgent(ctx, a.ID)
		is(t, err, domain.ErrNotFound, "second delete")
		_, err = r.GetAgent(ctx, a.ID)
		is(t, err, domain.ErrNotFound, "get deleted")
	})
	t.Run("registered agents", func(t *testing.T) {
		s := newSubject(t)
		gen := s.NewGenerator(t)
		if ok, err := s.Generators.GeneratorExists(ctx, gen); err != nil || !ok {
			t.Fatalf("GeneratorExists(new) = %v, %v", ok, err)
		}
		if ok, err := s.Generators.GeneratorExists(ctx, uuid.New()); err != nil || ok {
			t.Fatalf("GeneratorExists(unknown) = %v, %v", ok, err)
		}
		a := create(t, s.Agents, "a", "c1")
		b := create(t, s.Agents, "b", "c1")
		c := create(t, s.Agents, "c", "c1")
		for _, x := range []agent.Agent{a, b} {
			if _, err := s.Registrations.Register(ctx, x.ID, gen); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.Registrations.Register(ctx, a.ID, gen)
		is(t, err, domain.ErrConflict, "registering twice")
		if _, err := s.Agents.DeleteAgent(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.Agents.ListRegisteredAgents(ctx, gen)
		if err != nil || len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("ListRegisteredAgents = %+v, %v; want the live registered agent only", got, err)
		}
		// Every agent is registered with the system generator at creation.
		all, err := s.Agents.ListRegisteredAgents(ctx, generator.SystemID)
		if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != c.ID {
			t.Fatalf("system generator's agents = %+v, %v; want a then c", all, err)
		}
		if none, err := s.Agents.ListRegisteredAgents(ctx, uuid.New()); err != nil || len(none) != 0 {
			t.Fatalf("unknown generator's agents = %+v, %v", none, err)
		}
	})
	t.Run("heartbeat returns the previous stamp", func(t *testing.T) {
		r := newSubject(t).Agents
		a := create(t, r, "a", "c1")
		first, prev, err := r.Heartbeat(ctx, a.ID)
		if err != nil || prev != nil || first.LastHeartbeat == nil || first.ID != a.ID {
			t.Fatalf("first Heartbeat = %+v, %v, %v", first, prev, err)
		}
		time.Sleep(2 * time.Millisecond)
		second, prev, err := r.Heartbeat(ctx, a.ID)
		if err != nil || prev == nil || !prev.Equal(*first.LastHeartbeat) || !second.LastHeartbeat.After(*prev) {
			t.Fatalf("second Heartbeat = %+v, prev %v, %v", second, prev, err)
		}
		_, _, err = r.Heartbeat(ctx, uuid.New())
		is(t, err, domain.ErrNotFound, "heartbeat of an unknown agent")
		if _, err := r.DeleteAgent(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		_, _, err = r.Heartbeat(ctx, a.ID)
		is(t, err, domain.ErrNotFound, "heartbeat of a deleted agent")
	})
}

// RunTargetRepositoryContract checks TargetRepository.
func RunTargetRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	s := newSubject(t)
	a := create(t, s.Agents, "a", "c1")
	st1, st2 := s.NewStack(t, nil), s.NewStack(t, nil)
	for _, st := range []uuid.UUID{st1, st2} {
		got, err := s.Targets.AddAgentTarget(ctx, a.ID, st)
		if err != nil || got.AgentID != a.ID || got.StackID != st || got.ID == uuid.Nil {
			t.Fatalf("AddAgentTarget = %+v, %v", got, err)
		}
	}
	_, err := s.Targets.AddAgentTarget(ctx, a.ID, st1)
	is(t, err, domain.ErrConflict, "duplicate target")
	_, err = s.Targets.AddAgentTarget(ctx, a.ID, uuid.New())
	is(t, err, domain.ErrUnprocessable, "target of an unknown stack")
	list, err := s.Targets.ListAgentTargets(ctx, a.ID)
	if err != nil || len(list) != 2 || list[0].StackID.String() > list[1].StackID.String() {
		t.Fatalf("ListAgentTargets = %+v, %v", list, err)
	}
	stacks, err := s.Targets.AssociatedStacks(ctx, a.ID)
	if err != nil || len(stacks) != 2 {
		t.Fatalf("AssociatedStacks = %+v, %v", stacks, err)
	}
	if err := s.Targets.RemoveAgentTarget(ctx, a.ID, st1); err != nil {
		t.Fatal(err)
	}
	err = s.Targets.RemoveAgentTarget(ctx, a.ID, st1)
	is(t, err, domain.ErrNotFound, "remove absent target")
	if code := domain.CodeOf(err); code != "agent_target_not_found" {
		t.Fatalf("remove absent target: code %q, want agent_target_not_found", code)
	}
	if stacks, _ := s.Targets.AssociatedStacks(ctx, a.ID); len(stacks) != 1 || stacks[0].ID != st2 ||
		stacks[0].Name == "" || stacks[0].CreatedAt.IsZero() || stacks[0].DeletedAt != nil {
		t.Fatalf("AssociatedStacks after removal = %+v", stacks)
	}
	other := create(t, s.Agents, "b", "c1")
	if list, _ := s.Targets.ListAgentTargets(ctx, other.ID); list == nil || len(list) != 0 {
		t.Fatalf("another agent's targets: %#v", list)
	}
}

// RunEventRepositoryContract checks EventRepository.
func RunEventRepositoryContract(t *testing.T, newSubject func(t *testing.T) Subject) {
	ctx := context.Background()
	s := newSubject(t)
	gen := uuid.New()
	a := create(t, s.Agents, "a", "c1")
	b := create(t, s.Agents, "b", "c1")
	mine := s.NewStack(t, &gen)
	foreign := s.NewStack(t, nil)
	obj1, obj2 := s.NewObject(t, mine), s.NewObject(t, mine)
	alien := s.NewObject(t, foreign)
	if _, err := s.Targets.AddAgentTarget(ctx, a.ID, mine); err != nil {
		t.Fatal(err)
	}

	may := func(agentID, obj uuid.UUID) bool {
		t.Helper()
		ok, err := s.Events.AgentMayReport(ctx, agentID, obj)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !may(a.ID, obj1) || may(a.ID, alien) || may(b.ID, obj1) || may(a.ID, uuid.New()) {
		t.Fatal("AgentMayReport: want true only for the targeted stack's object")
	}

	msg := "boom"
	var created []agent.Event
	for _, in := range []agent.Event{
		{AgentID: a.ID, DeploymentObjectID: obj1, EventType: "DEPLOY", Status: "SUCCESS"},
		{AgentID: a.ID, DeploymentObjectID: obj2, EventType: "DEPLOY", Status: "FAILURE", Message: &msg},
		{AgentID: b.ID, DeploymentObjectID: alien, EventType: "DEPLOY", Status: "SUCCESS"},
	} {
		e := in
		if err := s.Events.CreateAgentEvent(ctx, &e); err != nil {
			t.Fatal(err)
		}
		if e.ID == uuid.Nil || e.CreatedAt.IsZero() || e.Status != in.Status || e.EventType != in.EventType {
			t.Fatalf("created %+v", e)
		}
		created = append(created, e)
		time.Sleep(2 * time.Millisecond) // distinct created_at, for the order
	}
	if created[1].Message == nil || *created[1].Message != msg {
		t.Fatalf("message lost: %+v", created[1])
	}
	bad := agent.Event{AgentID: a.ID, DeploymentObjectID: uuid.New(), EventType: "DEPLOY", Status: "SUCCESS"}
	is(t, s.Events.CreateAgentEvent(ctx, &bad), domain.ErrUnprocessable, "event on an unknown object")

	// Having reported on a stack's object proves an earlier association.
	if !may(b.ID, s.NewObject(t, foreign)) {
		t.Fatal("AgentMayReport: an earlier event on the stack should admit")
	}

	ids := func(es []agent.Event, err error) []uuid.UUID {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		out := []uuid.UUID{}
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	eq := func(what string, got []uuid.UUID, want ...uuid.UUID) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s = %v, want %v", what, got, want)
			}
		}
	}
	eq("ListAgentEvents(a)", ids(s.Events.ListAgentEvents(ctx, a.ID)), created[1].ID, created[0].ID)
	eq("ListEvents(all)", ids(s.Events.ListEvents(ctx, agents.EventScope{})), created[2].ID, created[1].ID, created[0].ID)
	eq("ListEvents(agent b)", ids(s.Events.ListEvents(ctx, agents.EventScope{AgentID: &b.ID})), created[2].ID)
	eq("ListEvents(generator)", ids(s.Events.ListEvents(ctx, agents.EventScope{GeneratorID: &gen})), created[1].ID, created[0].ID)
	tenant := s.NewGenerator(t)
	if _, err := s.Registrations.Register(ctx, b.ID, tenant); err != nil {
		t.Fatal(err)
	}
	eq("ListEvents(registered with tenant)", ids(s.Events.ListEvents(ctx, agents.EventScope{RegisteredWith: &tenant})), created[2].ID)
	unknown := uuid.New()
	eq("ListEvents(registered with an unknown generator)", ids(s.Events.ListEvents(ctx, agents.EventScope{RegisteredWith: &unknown})))
	eq("ListEvents(agent a, registered with tenant)", ids(s.Events.ListEvents(ctx, agents.EventScope{AgentID: &a.ID, RegisteredWith: &tenant})))

	got, err := s.Events.GetEvent(ctx, created[0].ID)
	if err != nil || got.ID != created[0].ID || got.DeploymentObjectID != obj1 {
		t.Fatalf("GetEvent = %+v, %v", got, err)
	}
	_, err = s.Events.GetEvent(ctx, uuid.New())
	is(t, err, domain.ErrNotFound, "GetEvent unknown")

	owns := func(g, obj uuid.UUID) bool {
		ok, err := s.Events.GeneratorOwnsObject(ctx, g, obj)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !owns(gen, obj1) || owns(gen, alien) || owns(uuid.New(), obj1) {
		t.Fatal("GeneratorOwnsObject: want true only for the generator's stack")
	}

	// Deleting an agent hides its events.
	if _, err := s.Agents.DeleteAgent(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Events.GetEvent(ctx, created[2].ID)
	is(t, err, domain.ErrNotFound, "event of a deleted agent")
	eq("ListEvents(all) after deleting b", ids(s.Events.ListEvents(ctx, agents.EventScope{})), created[1].ID, created[0].ID)
}
