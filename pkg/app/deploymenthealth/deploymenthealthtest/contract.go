package deploymenthealthtest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
)

// World creates, in the backing store, the rows records refer to.
type World interface {
	Agent(t *testing.T) uuid.UUID
	Stack(t *testing.T) uuid.UUID
	// Object adds a live deployment object to the stack, after its others.
	Object(t *testing.T, stackID uuid.UUID) uuid.UUID
	// DeleteObject soft-deletes an object.
	DeleteObject(t *testing.T, id uuid.UUID)
}

// Repos is one implementation under test.
type Repos struct {
	Records deploymenthealth.RecordRepository
	Refs    deploymenthealth.References
	World   World
}

// RunRecordRepositoryContract checks the rules every RecordRepository and
// References implementation keeps.
func RunRecordRepositoryContract(t *testing.T, newRepos func(t *testing.T) Repos) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(agent, obj uuid.UUID, status string, checked time.Time, summary string) health.Record {
		r := health.Record{AgentID: agent, DeploymentObjectID: obj, Status: status, CheckedAt: checked}
		if summary != "" {
			r.Summary = json.RawMessage(summary)
		}
		return r
	}

	t.Run("upsert returns the status it replaced", func(t *testing.T) {
		r := newRepos(t)
		agent, obj := r.World.Agent(t), r.World.Object(t, r.World.Stack(t))
		prev, err := r.Records.UpsertHealth(ctx, rec(agent, obj, health.Healthy, at, `{"pods_ready":1}`))
		if err != nil || prev != "" {
			t.Fatalf("first upsert: prev %q, err %v", prev, err)
		}
		prev, err = r.Records.UpsertHealth(ctx, rec(agent, obj, health.Failing, at.Add(time.Minute), ""))
		if err != nil || prev != health.Healthy {
			t.Fatalf("second upsert: prev %q, err %v; want healthy", prev, err)
		}
		got, err := r.Records.ObjectHealth(ctx, obj)
		if err != nil || len(got) != 1 {
			t.Fatalf("one record per (agent, object): %v %v", got, err)
		}
		g := got[0]
		if g.Status != health.Failing || !g.CheckedAt.Equal(at.Add(time.Minute)) || g.AgentID != agent || g.ID == uuid.Nil {
			t.Fatalf("stored %+v", g)
		}
		if string(g.Summary) != "null" {
			t.Fatalf("a missing summary reads as JSON null, got %s", g.Summary)
		}
	})

	t.Run("summary round-trips as JSON", func(t *testing.T) {
		r := newRepos(t)
		agent, obj := r.World.Agent(t), r.World.Object(t, r.World.Stack(t))
		if _, err := r.Records.UpsertHealth(ctx, rec(agent, obj, health.Degraded, at, `{"pods_ready":1,"pods_total":2}`)); err != nil {
			t.Fatal(err)
		}
		got, _ := r.Records.ObjectHealth(ctx, obj)
		var m map[string]any
		if len(got) != 1 || json.Unmarshal(got[0].Summary, &m) != nil ||
			!reflect.DeepEqual(m, map[string]any{"pods_ready": 1.0, "pods_total": 2.0}) {
			t.Fatalf("summary %v", got)
		}
	})

	t.Run("a record needs an existing agent and object", func(t *testing.T) {
		r := newRepos(t)
		agent, obj := r.World.Agent(t), r.World.Object(t, r.World.Stack(t))
		for name, bad := range map[string]health.Record{
			"object": rec(agent, uuid.New(), health.Healthy, at, ""),
			"agent":  rec(uuid.New(), obj, health.Healthy, at, ""),
		} {
			if _, err := r.Records.UpsertHealth(ctx, bad); !errors.Is(err, domain.ErrUnprocessable) {
				t.Errorf("unknown %s: %v, want ErrUnprocessable", name, err)
			}
		}
	})

	t.Run("object health is newest first", func(t *testing.T) {
		r := newRepos(t)
		a1, a2, obj := r.World.Agent(t), r.World.Agent(t), r.World.Object(t, r.World.Stack(t))
		other := r.World.Object(t, r.World.Stack(t))
		mustUpsert(t, r.Records, rec(a1, obj, health.Healthy, at, ""))
		mustUpsert(t, r.Records, rec(a2, obj, health.Failing, at.Add(time.Hour), ""))
		mustUpsert(t, r.Records, rec(a1, other, health.Healthy, at, ""))
		got, err := r.Records.ObjectHealth(ctx, obj)
		if err != nil || len(got) != 2 || got[0].AgentID != a2 || got[1].AgentID != a1 {
			t.Fatalf("ObjectHealth: %+v %v", got, err)
		}
		if none, err := r.Records.ObjectHealth(ctx, uuid.New()); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("unknown object: %#v %v (want an empty, non-nil list)", none, err)
		}
	})

	t.Run("stack health covers live objects in order", func(t *testing.T) {
		r := newRepos(t)
		stack, otherStack := r.World.Stack(t), r.World.Stack(t)
		a1, a2 := r.World.Agent(t), r.World.Agent(t)
		first, second, gone := r.World.Object(t, stack), r.World.Object(t, stack), r.World.Object(t, stack)
		elsewhere := r.World.Object(t, otherStack)
		for _, o := range []uuid.UUID{second, first, gone, elsewhere} {
			mustUpsert(t, r.Records, rec(a2, o, health.Healthy, at, ""))
			mustUpsert(t, r.Records, rec(a1, o, health.Degraded, at, ""))
		}
		r.World.DeleteObject(t, gone)
		got, err := r.Records.StackHealth(ctx, stack)
		if err != nil || len(got) != 4 {
			t.Fatalf("StackHealth: %d records, %v", len(got), err)
		}
		lo, hi := a1, a2
		if hi.String() < lo.String() {
			lo, hi = hi, lo
		}
		want := []pair{{lo, first}, {hi, first}, {lo, second}, {hi, second}}
		for i, g := range got {
			if (pair{g.AgentID, g.DeploymentObjectID}) != want[i] {
				t.Fatalf("order: record %d is %v/%v", i, g.AgentID, g.DeploymentObjectID)
			}
		}
	})

	t.Run("existence checks see live rows only", func(t *testing.T) {
		r := newRepos(t)
		stack := r.World.Stack(t)
		live, gone := r.World.Object(t, stack), r.World.Object(t, stack)
		r.World.DeleteObject(t, gone)
		for _, c := range []struct {
			name string
			fn   func(context.Context, uuid.UUID) (bool, error)
			id   uuid.UUID
			want bool
		}{
			{"live object", r.Refs.DeploymentObjectExists, live, true},
			{"deleted object", r.Refs.DeploymentObjectExists, gone, false},
			{"unknown object", r.Refs.DeploymentObjectExists, uuid.New(), false},
			{"live stack", r.Refs.StackExists, stack, true},
			{"unknown stack", r.Refs.StackExists, uuid.New(), false},
		} {
			if got, err := c.fn(ctx, c.id); err != nil || got != c.want {
				t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
			}
		}
	})
}

func mustUpsert(t *testing.T, r deploymenthealth.RecordRepository, rec health.Record) {
	t.Helper()
	if _, err := r.UpsertHealth(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}
