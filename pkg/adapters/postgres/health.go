package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/health"
)

// DeploymentHealth stores the deployment health agents report: one status
// per (agent, deployment object). Not to be confused with the services'
// /healthz or the agent's own /health (docs/architecture.md#names).
type DeploymentHealth struct{ s *Store }

// NewDeploymentHealth returns the deployment-health repository over s.
func NewDeploymentHealth(s *Store) *DeploymentHealth { return &DeploymentHealth{s: s} }

// Diagnostics stores diagnostic requests and their results.
type Diagnostics struct{ s *Store }

// NewDiagnostics returns the diagnostics repository over s.
func NewDiagnostics(s *Store) *Diagnostics { return &Diagnostics{s: s} }

// Existence answers whether live agents, stacks and deployment objects
// exist, for use cases that check a reference before acting on it.
type Existence struct{ s *Store }

// NewExistence returns the existence checks over s.
func NewExistence(s *Store) *Existence { return &Existence{s: s} }

var (
	_ deploymenthealth.RecordRepository = (*DeploymentHealth)(nil)
	_ deploymenthealth.References       = (*Existence)(nil)
	_ diagnostics.RequestRepository     = (*Diagnostics)(nil)
	_ diagnostics.References            = (*Existence)(nil)
)

// healthCols reads a NULL summary as JSON null (json.RawMessage cannot scan NULL).
const healthCols = `id, agent_id, deployment_object_id, status, COALESCE(summary, 'null'::jsonb) AS summary, checked_at, created_at, updated_at`

// UpsertHealth stores rec for (agent, object) and returns the replaced status
// ("" when there was none). The update reads the old status from the row it
// locks, so two reports racing on one row see each other's status.
func (r *DeploymentHealth) UpsertHealth(ctx context.Context, rec health.Record) (string, error) {
	var summary any
	if len(rec.Summary) > 0 {
		summary = string(rec.Summary)
	}
	var prev string
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		for attempt := 0; attempt < 2; attempt++ {
			err := r.s.q(ctx).GetContext(ctx, &prev, `UPDATE deployment_health h
				SET status = $3, summary = $4::jsonb, checked_at = $5
				FROM (SELECT id, status FROM deployment_health
				      WHERE agent_id = $1 AND deployment_object_id = $2 FOR UPDATE) old
				WHERE h.id = old.id RETURNING old.status`,
				rec.AgentID, rec.DeploymentObjectID, rec.Status, summary, rec.CheckedAt)
			if !isNoRows(err) {
				return mapErr(err)
			}
			res, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO deployment_health
				(agent_id, deployment_object_id, status, summary, checked_at) VALUES ($1, $2, $3, $4::jsonb, $5)
				ON CONFLICT (agent_id, deployment_object_id) DO NOTHING`,
				rec.AgentID, rec.DeploymentObjectID, rec.Status, summary, rec.CheckedAt)
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
func (r *DeploymentHealth) ObjectHealth(ctx context.Context, objectID uuid.UUID) ([]health.Record, error) {
	return selectAll[health.Record](ctx, r.s.q(ctx), `SELECT `+healthCols+` FROM deployment_health
		WHERE deployment_object_id = $1 ORDER BY checked_at DESC, id`, objectID)
}

// StackHealth returns the records of a stack's live objects.
func (r *DeploymentHealth) StackHealth(ctx context.Context, stackID uuid.UUID) ([]health.Record, error) {
	return selectAll[health.Record](ctx, r.s.q(ctx), `SELECT h.id, h.agent_id, h.deployment_object_id, h.status,
		COALESCE(h.summary, 'null'::jsonb) AS summary, h.checked_at, h.created_at, h.updated_at FROM deployment_health h
		JOIN deployment_objects d ON d.id = h.deployment_object_id
		WHERE d.stack_id = $1 AND d.deleted_at IS NULL ORDER BY d.sequence_id, h.agent_id`, stackID)
}

// DeploymentObjectExists reports whether a live object has id.
func (r *Existence) DeploymentObjectExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return r.exists(ctx, `SELECT EXISTS (SELECT 1 FROM deployment_objects WHERE id = $1 AND deleted_at IS NULL)`, id)
}

// StackExists reports whether a live stack has id.
func (r *Existence) StackExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return r.exists(ctx, `SELECT EXISTS (SELECT 1 FROM stacks WHERE id = $1 AND deleted_at IS NULL)`, id)
}

// AgentExists reports whether a live agent has id.
func (r *Existence) AgentExists(ctx context.Context, id uuid.UUID) (bool, error) {
	return r.exists(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE id = $1 AND deleted_at IS NULL)`, id)
}

func (r *Existence) exists(ctx context.Context, query string, args ...any) (bool, error) {
	var ok bool
	err := r.s.q(ctx).GetContext(ctx, &ok, query, args...)
	return ok, mapErr(err)
}

const diagnosticCols = `id, agent_id, deployment_object_id, status, requested_by, created_at, claimed_at, completed_at, expires_at`

const resultCols = `id, request_id, pod_statuses, events, log_tails, error, collected_at, created_at`

// CreateDiagnostic inserts a pending request.
func (r *Diagnostics) CreateDiagnostic(ctx context.Context, req *diagnostic.Request) error {
	return insertInto(ctx, r.s.q(ctx), req, `INSERT INTO diagnostic_requests (agent_id, deployment_object_id, requested_by, expires_at)
		VALUES ($1, $2, $3, $4) RETURNING `+diagnosticCols, req.AgentID, req.DeploymentObjectID, req.RequestedBy, req.ExpiresAt)
}

// GetDiagnostic returns one request.
func (r *Diagnostics) GetDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error) {
	return getOne[diagnostic.Request](ctx, r.s.q(ctx), "diagnostic_not_found", "Diagnostic request not found",
		`SELECT `+diagnosticCols+` FROM diagnostic_requests WHERE id = $1`, id)
}

// GetDiagnosticResult returns a request's result, or nil.
func (r *Diagnostics) GetDiagnosticResult(ctx context.Context, requestID uuid.UUID) (*diagnostic.Result, error) {
	var res diagnostic.Result
	err := r.s.q(ctx).GetContext(ctx, &res, `SELECT `+resultCols+` FROM diagnostic_results WHERE request_id = $1`, requestID)
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
func (r *Diagnostics) RecentDiagnostics(ctx context.Context, agentID uuid.UUID, limit int) ([]diagnostic.Request, []diagnostic.Result, error) {
	reqs, err := selectAll[diagnostic.Request](ctx, r.s.q(ctx), `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, agentID, limit)
	if err != nil {
		return nil, nil, err
	}
	results := []diagnostic.Result{}
	if len(reqs) == 0 {
		return reqs, results, nil
	}
	ids := make([]uuid.UUID, len(reqs))
	for i, req := range reqs {
		ids[i] = req.ID
	}
	err = r.s.q(ctx).SelectContext(ctx, &results, `SELECT `+resultCols+`
		FROM diagnostic_results WHERE request_id = ANY($1::uuid[])`, uuidStrings(ids))
	return reqs, results, mapErr(err)
}

// PendingDiagnostics lists an agent's pending, unexpired requests.
func (r *Diagnostics) PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error) {
	return selectAll[diagnostic.Request](ctx, r.s.q(ctx), `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 AND status = 'pending' AND expires_at > now() ORDER BY created_at, id`, agentID)
}

// ClaimDiagnostic claims a pending, unexpired request atomically.
func (r *Diagnostics) ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, bool, error) {
	var req diagnostic.Request
	err := r.s.q(ctx).GetContext(ctx, &req, `UPDATE diagnostic_requests SET status = 'claimed', claimed_at = now()
		WHERE id = $1 AND status = 'pending' AND expires_at > now() RETURNING `+diagnosticCols, id)
	if isNoRows(err) {
		return diagnostic.Request{}, false, nil
	}
	if err != nil {
		return diagnostic.Request{}, false, mapErr(err)
	}
	return req, true, nil
}

// CompleteDiagnostic stores the result and finishes a claimed request.
func (r *Diagnostics) CompleteDiagnostic(ctx context.Context, res *diagnostic.Result, status string) (bool, error) {
	var ok bool
	err := r.s.InTx(ctx, func(ctx context.Context) error {
		upd, err := r.s.q(ctx).ExecContext(ctx, `UPDATE diagnostic_requests SET status = $2, completed_at = now()
			WHERE id = $1 AND status = 'claimed'`, res.RequestID, status)
		if err != nil {
			return mapErr(err)
		}
		if n, _ := upd.RowsAffected(); n == 0 {
			return nil
		}
		ok = true
		return insertInto(ctx, r.s.q(ctx), res, `INSERT INTO diagnostic_results
			(request_id, pod_statuses, events, log_tails, error, collected_at) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+resultCols,
			res.RequestID, res.PodStatuses, res.Events, res.LogTails, res.Error, res.CollectedAt)
	})
	return ok, err
}
