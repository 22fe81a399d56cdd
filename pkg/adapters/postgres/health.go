package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
)

// healthCols reads a NULL summary as JSON null (json.RawMessage cannot scan NULL).
const healthCols = `id, agent_id, deployment_object_id, status, COALESCE(summary, 'null'::jsonb) AS summary, checked_at, created_at, updated_at`

// UpsertHealth stores r for (agent, object) and returns the replaced status
// ("" when there was none). The update reads the old status from the row it
// locks, so two reports racing on one row see each other's status.
func (s *Store) UpsertHealth(ctx context.Context, r health.Record) (string, error) {
	var summary any
	if len(r.Summary) > 0 {
		summary = string(r.Summary)
	}
	var prev string
	err := s.InTx(ctx, func(ctx context.Context) error {
		for attempt := 0; attempt < 2; attempt++ {
			err := s.q(ctx).GetContext(ctx, &prev, `UPDATE deployment_health h
				SET status = $3, summary = $4::jsonb, checked_at = $5
				FROM (SELECT id, status FROM deployment_health
				      WHERE agent_id = $1 AND deployment_object_id = $2 FOR UPDATE) old
				WHERE h.id = old.id RETURNING old.status`,
				r.AgentID, r.DeploymentObjectID, r.Status, summary, r.CheckedAt)
			if !isNoRows(err) {
				return mapErr(err)
			}
			res, err := s.q(ctx).ExecContext(ctx, `INSERT INTO deployment_health
				(agent_id, deployment_object_id, status, summary, checked_at) VALUES ($1, $2, $3, $4::jsonb, $5)
				ON CONFLICT (agent_id, deployment_object_id) DO NOTHING`,
				r.AgentID, r.DeploymentObjectID, r.Status, summary, r.CheckedAt)
			if err != nil {
				return mapErr(err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				prev = ""
				return nil
			}
			// Another report inserted the row meanwhile: update it instead.
		}
		return nil
	})
	return prev, err
}

// ObjectHealth returns every agent's record for an object, newest first.
func (s *Store) ObjectHealth(ctx context.Context, objectID uuid.UUID) ([]health.Record, error) {
	out := []health.Record{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+healthCols+` FROM deployment_health
		WHERE deployment_object_id = $1 ORDER BY checked_at DESC, id`, objectID)
	return out, mapErr(err)
}

// StackHealth returns the records of a stack's live objects.
func (s *Store) StackHealth(ctx context.Context, stackID uuid.UUID) ([]health.Record, error) {
	out := []health.Record{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT h.id, h.agent_id, h.deployment_object_id, h.status,
		COALESCE(h.summary, 'null'::jsonb) AS summary, h.checked_at, h.created_at, h.updated_at FROM deployment_health h
		JOIN deployment_objects d ON d.id = h.deployment_object_id
		WHERE d.stack_id = $1 AND d.deleted_at IS NULL ORDER BY d.sequence_id, h.agent_id`, stackID)
	return out, mapErr(err)
}

// DeploymentObjectExists reports whether a live object has id.
func (s *Store) DeploymentObjectExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return s.exists(ctx, `SELECT EXISTS (SELECT 1 FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL)`, id)
}

// StackExists reports whether a live stack has id.
func (s *Store) StackExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return s.exists(ctx, `SELECT EXISTS (SELECT 1 FROM stacks WHERE id = $1 AND deleted_at IS NULL)`, id)
}

// AgentExists reports whether a live agent has id.
func (s *Store) AgentExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return s.exists(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND deleted_at IS NULL)`, id)
}

func (s *Store) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var ok bool
	err := s.q(ctx).GetContext(ctx, &ok, query, args...)
	return ok, mapErr(err)
}

const diagnosticCols = `id, agent_id, deployment_object_id, status, requested_by, created_at, claimed_at, completed_at, expires_at`

// CreateDiagnostic inserts a pending request.
func (s *Store) CreateDiagnostic(ctx context.Context, r *diagnostic.Request) error {
	err := s.q(ctx).GetContext(ctx, r, `INSERT INTO diagnostic_requests (agent_id, deployment_object_id, requested_by, expires_at)
		VALUES ($1, $2, $3, $4) RETURNING `+diagnosticCols, r.AgentID, r.DeploymentObjectID, r.RequestedBy, r.ExpiresAt)
	return mapErr(err)
}

// GetDiagnostic returns one request.
func (s *Store) GetDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error) {
	var r diagnostic.Request
	err := s.q(ctx).GetContext(ctx, &r, `SELECT `+diagnosticCols+` FROM diagnostic_requests WHERE id = $1`, id)
	return r, notFound(err, "Diagnostic request not found")
}

// GetDiagnosticResult returns a request's result, or nil.
func (s *Store) GetDiagnosticResult(ctx context.Context, requestID uuid.UUID) (*diagnostic.Result, error) {
	var res diagnostic.Result
	err := s.q(ctx).GetContext(ctx, &res, `SELECT id, request_id, pod_statuses, events, log_tails, error, collected_at, created_at
		FROM diagnostic_results WHERE request_id = $1`, requestID)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return &res, nil
}

// RecentDiagnostics returns an agent's newest requests of any status,
// newest first, and the results of those that have one.
func (s *Store) RecentDiagnostics(ctx context.Context, agentID uuid.UUID, limit int) ([]diagnostic.Request, []diagnostic.Result, error) {
	reqs := []diagnostic.Request{}
	if err := s.q(ctx).SelectContext(ctx, &reqs, `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, agentID, limit); err != nil {
		return nil, nil, mapErr(err)
	}
	results := []diagnostic.Result{}
	if len(reqs) == 0 {
		return reqs, results, nil
	}
	ids := make([]uuid.UUID, len(reqs))
	for i, r := range reqs {
		ids[i] = r.ID
	}
	err := s.q(ctx).SelectContext(ctx, &results, `SELECT id, request_id, pod_statuses, events, log_tails, error, collected_at, created_at
		FROM diagnostic_results WHERE request_id = ANY($1::uuid[])`, uuidStrings(ids))
	return reqs, results, mapErr(err)
}

// PendingDiagnostics lists an agent's pending, unexpired requests.
func (s *Store) PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error) {
	out := []diagnostic.Request{}
	err := s.q(ctx).SelectContext(ctx, &out, `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 AND status = 'pending' AND expires_at > now() ORDER BY created_at, id`, agentID)
	return out, mapErr(err)
}

// ClaimDiagnostic claims a pending, unexpired request atomically.
func (s *Store) ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, bool, error) {
	var r diagnostic.Request
	err := s.q(ctx).GetContext(ctx, &r, `UPDATE diagnostic_requests SET status = 'claimed', claimed_at = now()
		WHERE id = $1 AND status = 'pending' AND expires_at > now() RETURNING `+diagnosticCols, id)
	if isNoRows(err) {
		return diagnostic.Request{}, false, nil
	}
	return r, err == nil, mapErr(err)
}

// CompleteDiagnostic stores the result and finishes a claimed request.
func (s *Store) CompleteDiagnostic(ctx context.Context, res *diagnostic.Result, status string) (bool, error) {
	var ok bool
	err := s.InTx(ctx, func(ctx context.Context) error {
		r, err := s.q(ctx).ExecContext(ctx, `UPDATE diagnostic_requests SET status = $2, completed_at = now()
			WHERE id = $1 AND status = 'claimed'`, res.RequestID, status)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return nil
		}
		ok = true
		return mapErr(s.q(ctx).GetContext(ctx, res, `INSERT INTO diagnostic_results
			(request_id, pod_statuses, events, log_tails, error, collected_at) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING id, request_id, pod_statuses, events, log_tails, error, collected_at, created_at`,
			res.RequestID, res.PodStatuses, res.Events, res.LogTails, res.Error, res.CollectedAt))
	})
	return ok, err
}
