// Package targetstate computes what an agent should have applied: per
// associated stack the latest deployment object
// (docs/compatibility.md#target-state, #deletion-markers), with an
// ETag for conditional requests and a long-poll that wakes on change.
package targetstate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// MaxWait bounds ?wait= so a connection is never held indefinitely.
const MaxWait = 60 * time.Second

// PollInterval is how often a long-poll re-reads PostgreSQL when the
// notification path (Redis) is unavailable.
var PollInterval = 2 * time.Second

// Service implements the target-state use case on top of the replica's
// Index (index.go).
type Service struct {
	index *Index
}

// NewService wires the use case.
func NewService(index *Index) *Service { return &Service{index: index} }

// Query is one target-state request.
type Query struct {
	AgentID     uuid.UUID
	Full        bool
	IfNoneMatch string
	Wait        time.Duration
}

// Result is the answer. NotModified means the client's ETag still holds;
// otherwise Body is the JSON of Objects, encoded once per distinct answer.
type Result struct {
	Objects     []stack.DeploymentObject
	Body        []byte
	ETag        string
	NotModified bool
}

// Get answers a target-state request, long-polling when asked to.
func (s *Service) Get(ctx context.Context, p identity.Principal, q Query) (Result, error) {
	if !p.IsAdmin() && !p.IsAgent(q.AgentID) {
		return Result{}, domain.Forbidden("Unauthorized")
	}
	if q.Wait < 0 {
		return Result{}, domain.Invalid("wait must not be negative")
	}
	if q.Wait > MaxWait {
		q.Wait = MaxWait
	}
	v, err := s.index.Get(ctx, q.AgentID)
	if err != nil {
		return Result{}, err
	}
	res := v.Result(q.Full, q.IfNoneMatch)
	if !res.NotModified || q.Wait == 0 {
		return res, nil
	}
	deadline := time.NewTimer(q.Wait)
	defer deadline.Stop()
	woken := false
	for {
		ch, cancel, ok := s.index.Subscribe(q.AgentID)
		var poll <-chan time.Time
		if !ok {
			t := time.NewTimer(PollInterval)
			poll = t.C
			stop := cancel
			cancel = func() { t.Stop(); stop() }
		}
		// Re-read after subscribing so a change between the first read and
		// the subscription is not missed.
		v, err = s.index.Get(ctx, q.AgentID)
		if err != nil {
			cancel()
			return Result{}, err
		}
		if res = v.Result(q.Full, q.IfNoneMatch); !res.NotModified {
			cancel()
			if woken {
				v.observeWake()
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			cancel()
			return res, nil
		case <-deadline.C:
			cancel()
			return res, nil
		case <-ch:
			woken = true
		case <-poll:
		}
		cancel()
	}
}

// ETag identifies a target-state answer: the objects' ids and sequence ids,
// the agent status and the mode.
func ETag(status string, full bool, objs []stack.DeploymentObject) string {
	h := sha256.New()
	h.Write([]byte(status))
	if full {
		h.Write([]byte{1})
	}
	var buf [8]byte
	for _, o := range objs {
		h.Write(o.ID[:])
		binary.BigEndian.PutUint64(buf[:], uint64(o.SequenceID))
		h.Write(buf[:])
	}
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}
