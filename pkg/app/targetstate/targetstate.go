// Package targetstate computes what an agent should have applied: per
// associated stack the latest deployment object (DECISIONS 16–17), with an
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
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// Store is the persistence target state needs.
type Store interface {
	GetAgent(ctx context.Context, id uuid.UUID) (agent.Agent, error)
	// TargetState returns, per associated stack, its latest live object,
	// ascending by sequence_id; deleted stacks contribute their deletion
	// marker. With hideAcked, objects the agent reported SUCCESS for are left
	// out.
	TargetState(ctx context.Context, agentID uuid.UUID, hideAcked bool) ([]stack.DeploymentObject, error)
	// AssociatedStackIDs lists the live stacks associated with the agent,
	// with or without objects: a long-poll must wake on a first deployment.
	AssociatedStackIDs(ctx context.Context, agentID uuid.UUID) ([]uuid.UUID, error)
}

// Waiter blocks until something relevant to the agent may have changed.
type Waiter interface {
	// Subscribe returns a channel that receives when the agent, one of the
	// given stacks, or everything changes; cancel releases it. When the
	// notification path is down it returns ok=false and callers poll.
	Subscribe(agentID uuid.UUID, stackIDs []uuid.UUID) (ch <-chan struct{}, cancel func(), ok bool)
}

// MaxWait bounds ?wait= so a connection is never held indefinitely.
const MaxWait = 60 * time.Second

// PollInterval is how often a long-poll re-reads PostgreSQL when the
// notification path (Redis) is unavailable.
var PollInterval = 2 * time.Second

// Service implements the target-state use case.
type Service struct {
	store  Store
	waiter Waiter
}

// NewService wires the use case.
func NewService(store Store, waiter Waiter) *Service { return &Service{store: store, waiter: waiter} }

// Query is one target-state request.
type Query struct {
	AgentID     uuid.UUID
	Full        bool
	IfNoneMatch string
	Wait        time.Duration
}

// Result is the answer. NotModified means the client's ETag still holds.
type Result struct {
	Objects     []stack.DeploymentObject
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
	res, err := s.compute(ctx, q)
	if err != nil || res.ETag != q.IfNoneMatch || q.Wait == 0 {
		return res, err
	}
	deadline := time.NewTimer(q.Wait)
	defer deadline.Stop()
	for {
		ids, err := s.store.AssociatedStackIDs(ctx, q.AgentID)
		if err != nil {
			return Result{}, err
		}
		ids = append(ids, stackIDs(res.Objects)...)
		ch, cancel, ok := s.waiter.Subscribe(q.AgentID, ids)
		var poll <-chan time.Time
		if !ok {
			t := time.NewTimer(PollInterval)
			poll = t.C
			cancel = func() { t.Stop() }
		}
		// Re-read after subscribing so a change between the first read and
		// the subscription is not missed.
		res, err = s.compute(ctx, q)
		if err != nil || res.ETag != q.IfNoneMatch {
			cancel()
			return res, err
		}
		select {
		case <-ctx.Done():
			cancel()
			return res, nil
		case <-deadline.C:
			cancel()
			return res, nil
		case <-ch:
		case <-poll:
		}
		cancel()
	}
}

func (s *Service) compute(ctx context.Context, q Query) (Result, error) {
	a, err := s.store.GetAgent(ctx, q.AgentID)
	if err != nil {
		return Result{}, err
	}
	objs := []stack.DeploymentObject{}
	// An INACTIVE agent receives no target state (DECISIONS 11).
	if a.Status == agent.StatusActive {
		if objs, err = s.store.TargetState(ctx, q.AgentID, !q.Full); err != nil {
			return Result{}, err
		}
	}
	etag := ETag(a.Status, q.Full, objs)
	return Result{Objects: objs, ETag: etag, NotModified: etag == q.IfNoneMatch}, nil
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

func stackIDs(objs []stack.DeploymentObject) []uuid.UUID {
	ids := make([]uuid.UUID, len(objs))
	for i, o := range objs {
		ids[i] = o.StackID
	}
	return ids
}
