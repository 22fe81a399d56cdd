package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
)

// TestHeartbeatsGrouped: many agents beating at once are stamped in fewer
// statements than beats, each beat answers its own agent's current row,
// a deleted or unknown agent is 404, and a beat inside a transaction is
// part of that transaction.
func TestHeartbeatsGrouped(t *testing.T) {
	db := pgtest.New(t)
	s := postgres.NewStore(db)
	agents := postgres.NewAgents(s)
	ctx := context.Background()

	const n = 300
	db.MustExec(`INSERT INTO agents (name, cluster_name, status)
		SELECT 'beat-' || g, 'c', CASE WHEN g % 2 = 0 THEN 'ACTIVE' ELSE 'INACTIVE' END FROM generate_series(1, $1) g`, n)
	var rows []struct {
		ID     uuid.UUID `db:"id"`
		Status string    `db:"status"`
	}
	if err := db.Select(&rows, `SELECT id, status FROM agents WHERE name LIKE 'beat-%' ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	status := map[uuid.UUID]string{}
	for _, r := range rows {
		ids = append(ids, r.ID)
		status[r.ID] = r.Status
	}
	deleted := ids[0]
	db.MustExec(`UPDATE agents SET deleted_at = now() WHERE id = $1`, deleted)
	unknown := uuid.New()

	before := time.Now().Add(-time.Second)
	start := make(chan struct{})
	type answer struct {
		a    agent.Agent
		prev *time.Time
		err  error
	}
	answers := make([]answer, len(ids)+1)
	var wg sync.WaitGroup
	for i, id := range append(append([]uuid.UUID{}, ids...), unknown) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, prev, err := agents.Heartbeat(ctx, id)
			answers[i] = answer{a, prev, err}
		}()
	}
	close(start)
	wg.Wait()

	for i, id := range append(append([]uuid.UUID{}, ids...), unknown) {
		got := answers[i]
		if id == deleted || id == unknown {
			if !errors.Is(got.err, domain.ErrNotFound) {
				t.Errorf("beat of %s agent: err %v, want not found", map[bool]string{true: "deleted", false: "unknown"}[id == deleted], got.err)
			}
			continue
		}
		if got.err != nil {
			t.Fatalf("beat %d: %v", i, got.err)
		}
		if got.a.ID != id {
			t.Fatalf("beat of %s answered agent %s", id, got.a.ID)
		}
		if got.a.LastHeartbeat == nil || got.a.LastHeartbeat.Before(before) {
			t.Fatalf("beat of %s: last_heartbeat %v not stamped", id, got.a.LastHeartbeat)
		}
		if got.prev != nil {
			t.Fatalf("first beat of %s: previous heartbeat %v, want none", id, got.prev)
		}
		if want := status[id]; got.a.Status != want {
			t.Fatalf("beat of %s: status %q, want the row's %q", id, got.a.Status, want)
		}
	}
	var stamped int
	if err := db.Get(&stamped, `SELECT count(*) FROM agents WHERE name LIKE 'beat-%' AND last_heartbeat >= $1`, before); err != nil {
		t.Fatal(err)
	}
	if stamped != n-1 {
		t.Fatalf("%d agents stamped in the database, want %d", stamped, n-1)
	}
	if f := postgres.BeatFlushes(s); f >= int64(len(ids)) {
		t.Fatalf("%d beats took %d statements: not grouped", len(ids)+1, f)
	} else {
		t.Logf("%d concurrent beats in %d statements", len(ids)+1, f)
	}

	// The next beat reports the one before it.
	_, previous, err := agents.Heartbeat(ctx, ids[3])
	if err != nil || previous == nil || !previous.Equal(*answers[3].a.LastHeartbeat) {
		t.Fatalf("second beat: previous %v (err %v), want the first stamp %v", previous, err, answers[3].a.LastHeartbeat)
	}

	// Inside a transaction the beat is the transaction's: rolled back with it.
	var prev time.Time
	if err := db.Get(&prev, `SELECT last_heartbeat FROM agents WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	flushes := postgres.BeatFlushes(s)
	rollback := errors.New("roll back")
	err = s.InTx(ctx, func(ctx context.Context) error {
		if _, _, err := agents.Heartbeat(ctx, ids[1]); err != nil {
			return err
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx: %v", err)
	}
	var after time.Time
	if err := db.Get(&after, `SELECT last_heartbeat FROM agents WHERE id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	if !after.Equal(prev) || postgres.BeatFlushes(s) != flushes {
		t.Fatalf("a beat inside a rolled-back transaction was written outside it (%v → %v)", prev, after)
	}

	// A caller that gives up gets its context's error; the flush goes on.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := agents.Heartbeat(cctx, ids[2]); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled beat: %v", err)
	}
}
