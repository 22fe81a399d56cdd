package postgres

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
)

// Heartbeats are the one steady write of a fleet: 10,000 agents beating
// every 30 s are 333 commits a second, each waiting for its own WAL flush.
// heartbeats group them: a beat that arrives while a flush is running waits
// for the next one, which stamps every waiting agent in one UPDATE and one
// commit. An idle fleet pays nothing for this (a lone beat is flushed at
// once); a busy one pays one commit per batch instead of one per agent, so
// the write rate follows PostgreSQL's commit latency, not the fleet's size.
// See docs/operations.md#capacity.
type heartbeats struct {
	db querier

	mu       sync.Mutex
	pending  []*beat
	flushers int

	flushes atomic.Int64 // UPDATE statements run (tests and metrics)
}

type beat struct {
	id   uuid.UUID
	done chan struct{}
	row  beatRow
	err  error
}

// beatRow is a stamped agent and its heartbeat before the stamp.
type beatRow struct {
	agent.Agent
	Previous *time.Time `db:"previous_heartbeat"`
}

// heartbeatSQL stamps the agents whose ids are in $1 (a text array) and
// returns each with its previous heartbeat, read in the same statement.
const heartbeatSQL = `UPDATE agents SET last_heartbeat = now()
	FROM (SELECT id AS beat_id, last_heartbeat AS previous_heartbeat FROM agents WHERE id = ANY($1::uuid[])) p
	WHERE id = p.beat_id AND deleted_at IS NULL RETURNING ` + agentCols + `, p.previous_heartbeat`

const (
	// maxBeatFlushers flushes run at once: two keep the pool busy while a
	// commit waits for its WAL flush, without taking it over.
	maxBeatFlushers = 2
	// maxBeatBatch bounds one UPDATE's array.
	maxBeatBatch = 1000
	// beatFlushTimeout bounds a flush, which no single request owns.
	beatFlushTimeout = 10 * time.Second
)

// stamp records a heartbeat of id and returns the agent's row as it is
// after it with the heartbeat before it, or domain.ErrNotFound when the
// agent is absent or deleted.
func (h *heartbeats) stamp(ctx context.Context, id uuid.UUID) (agent.Agent, *time.Time, error) {
	b := &beat{id: id, done: make(chan struct{})}
	h.mu.Lock()
	h.pending = append(h.pending, b)
	lead := h.flushers < maxBeatFlushers
	if lead {
		h.flushers++
	}
	h.mu.Unlock()
	if lead {
		// The flush loop runs on its own goroutine: the beat that started
		// it must not serve everybody else's batches before its answer.
		go h.flushLoop()
	}
	select {
	case <-b.done:
		return b.row.Agent, b.row.Previous, b.err
	case <-ctx.Done():
		// The beat may still be written by the flush: a heartbeat is
		// idempotent, so that is harmless.
		return agent.Agent{}, nil, ctx.Err()
	}
}

// flushLoop flushes batches until nothing is pending.
func (h *heartbeats) flushLoop() {
	for {
		h.mu.Lock()
		if len(h.pending) == 0 {
			h.flushers--
			h.mu.Unlock()
			return
		}
		n := min(len(h.pending), maxBeatBatch)
		batch := h.pending[:n:n]
		h.pending = h.pending[n:]
		h.mu.Unlock()
		h.flush(batch)
	}
}

// flush stamps the batch's agents in one statement and answers each beat.
// The ids are sorted and deduplicated, so concurrent flushes lock rows in
// the same order and cannot deadlock.
func (h *heartbeats) flush(batch []*beat) {
	ids := make([]string, 0, len(batch))
	for _, b := range batch {
		ids = append(ids, b.id.String())
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)

	ctx, cancel := context.WithTimeout(context.Background(), beatFlushTimeout)
	defer cancel()
	h.flushes.Add(1)
	var rows []beatRow
	err := mapErr(h.db.SelectContext(ctx, &rows, heartbeatSQL, ids))
	byID := make(map[uuid.UUID]beatRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	for _, b := range batch {
		switch r, ok := byID[b.id]; {
		case err != nil:
			b.err = err
		case ok:
			b.row = r
		default:
			b.err = domain.NotFoundCode("agent_not_found", "Agent not found")
		}
		close(b.done)
	}
}
