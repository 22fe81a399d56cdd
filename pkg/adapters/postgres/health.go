package postgres

import (
	"context"
	"encoding/json"
	"time"

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

// healthRow is a deployment_health row as healthCols selects it.
type healthRow struct {
	ID                 uuid.UUID       `db:"id"`
	AgentID            uuid.UUID       `db:"agent_id"`
	DeploymentObjectID uuid.UUID       `db:"deployment_object_id"`
	Status             string          `db:"status"`
	Summary            json.RawMessage `db:"summary"`
	CheckedAt          time.Time       `db:"checked_at"`
	CreatedAt          time.Time       `db:"created_at"`
	UpdatedAt          time.Time       `db:"updated_at"`
}

func healthRecords(rows []healthRow) []health.Record {
	out := make([]health.Record, len(rows))
	for i, r := range rows {
		out[i] = health.Record{ID: r.ID, AgentID: r.AgentID, DeploymentObjectID: r.DeploymentObjectID, Status: r.Status,
			Summary: r.Summary, CheckedAt: r.CheckedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	}
	return out
}

// diagnosticRow is a diagnostic_requests row as diagnosticCols selects it.
type diagnosticRow struct {
	ID                 uuid.UUID  `db:"id"`
	AgentID            uuid.UUID  `db:"agent_id"`
	DeploymentObjectID uuid.UUID  `db:"deployment_object_id"`
	Status             string     `db:"status"`
	RequestedBy        *string    `db:"requested_by"`
	CreatedAt          time.Time  `db:"created_at"`
	ClaimedAt          *time.Time `db:"claimed_at"`
	CompletedAt        *time.Time `db:"completed_at"`
	ExpiresAt          time.Time  `db:"expires_at"`
}

func (r diagnosticRow) domain() diagnostic.Request {
	return diagnostic.Request{ID: r.ID, AgentID: r.AgentID, DeploymentObjectID: r.DeploymentObjectID, Status: r.Status,
		RequestedBy: r.RequestedBy, CreatedAt: r.CreatedAt, ClaimedAt: r.ClaimedAt, CompletedAt: r.CompletedAt,
		ExpiresAt: r.ExpiresAt}
}

func diagnosticRequests(rows []diagnosticRow) []diagnostic.Request {
	out := make([]diagnostic.Request, len(rows))
	for i, r := range rows {
		out[i] = r.domain()
	}
	return out
}

// resultRow is a diagnostic_results row.
type resultRow struct {
	ID          uuid.UUID `db:"id"`
	RequestID   uuid.UUID `db:"request_id"`
	PodStatuses string    `db:"pod_statuses"`
	Events      string    `db:"events"`
	LogTails    *string   `db:"log_tails"`
	Error       *string   `db:"error"`
	CollectedAt time.Time `db:"collected_at"`
	CreatedAt   time.Time `db:"created_at"`
}

func (r resultRow) domain() diagnostic.Result {
	return diagnostic.Result{ID: r.ID, RequestID: r.RequestID, PodStatuses: r.PodStatuses, Events: r.Events,
		LogTails: r.LogTails, Error: r.Error, CollectedAt: r.CollectedAt, CreatedAt: r.CreatedAt}
}

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
	var rows []healthRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+healthCols+` FROM deployment_health
		WHERE deployment_object_id = $1 ORDER BY checked_at DESC, id`, objectID)
	return healthRecords(rows), mapErr(err)
}

// StackHealth returns the records of a stack's live objects.
func (r *DeploymentHealth) StackHealth(ctx context.Context, stackID uuid.UUID) ([]health.Record, error) {
	var rows []healthRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT h.id, h.agent_id, h.deployment_object_id, h.status,
		COALESCE(h.summary, 'null'::jsonb) AS summary, h.checked_at, h.created_at, h.updated_at FROM deployment_health h
		JOIN deployment_objects d ON d.id = h.deployment_object_id
		WHERE d.stack_id = $1 AND d.deleted_at IS NULL ORDER BY d.sequence_id, h.agent_id`, stackID)
	return healthRecords(rows), mapErr(err)
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
	return insertInto[diagnosticRow](ctx, r.s.q(ctx), req, `INSERT INTO diagnostic_requests (agent_id, deployment_object_id, requested_by, expires_at)
		VALUES ($1, $2, $3, $4) RETURNING `+diagnosticCols, req.AgentID, req.DeploymentObjectID, req.RequestedBy, req.ExpiresAt)
}

// GetDiagnostic returns one request.
func (r *Diagnostics) GetDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error) {
	var row diagnosticRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+diagnosticCols+` FROM diagnostic_requests WHERE id = $1`, id)
	if err != nil {
		return diagnostic.Request{}, notFound(err, "diagnostic_not_found", "Diagnostic request not found")
	}
	return row.domain(), nil
}

// GetDiagnosticResult returns a request's result, or nil.
func (r *Diagnostics) GetDiagnosticResult(ctx context.Context, requestID uuid.UUID) (*diagnostic.Result, error) {
	var row resultRow
	err := r.s.q(ctx).GetContext(ctx, &row, `SELECT `+resultCols+` FROM diagnostic_results WHERE request_id = $1`, requestID)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr(err)
	}
	res := row.domain()
	return &res, nil
}

// RecentDiagnostics returns an agent's newest requests of any status,
// newest first, and the results of those that have one.
func (r *Diagnostics) RecentDiagnostics(ctx context.Context, agentID uuid.UUID, limit int) ([]diagnostic.Request, []diagnostic.Result, error) {
	var reqRows []diagnosticRow
	if err := r.s.q(ctx).SelectContext(ctx, &reqRows, `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, agentID, limit); err != nil {
		return nil, nil, mapErr(err)
	}
	reqs := diagnosticRequests(reqRows)
	results := []diagnostic.Result{}
	if len(reqs) == 0 {
		return reqs, results, nil
	}
	ids := make([]uuid.UUID, len(reqs))
	for i, req := range reqs {
		ids[i] = req.ID
	}
	var resRows []resultRow
	err := r.s.q(ctx).SelectContext(ctx, &resRows, `SELECT `+resultCols+`
		FROM diagnostic_results WHERE request_id = ANY($1::uuid[])`, uuidStrings(ids))
	for _, row := range resRows {
		results = append(results, row.domain())
	}
	return reqs, results, mapErr(err)
}

// PendingDiagnostics lists an agent's pending, unexpired requests.
func (r *Diagnostics) PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error) {
	var rows []diagnosticRow
	err := r.s.q(ctx).SelectContext(ctx, &rows, `SELECT `+diagnosticCols+` FROM diagnostic_requests
		WHERE agent_id = $1 AND status = 'pending' AND expires_at > now() ORDER BY created_at, id`, agentID)
	return diagnosticRequests(rows), mapErr(err)
}

// ClaimDiagnostic claims a pending, unexpired request atomically.
func (r *Diagnostics) ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, bool, error) {
	var row diagnosticRow
	err := r.s.q(ctx).GetContext(ctx, &row, `UPDATE diagnostic_requests SET status = 'claimed', claimed_at = now()
		WHERE id = $1 AND status = 'pending' AND expires_at > now() RETURNING `+diagnosticCols, id)
	if isNoRows(err) {
		return diagnostic.Request{}, false, nil
	}
	if err != nil {
		return diagnostic.Request{}, false, mapErr(err)
	}
	return row.domain(), true, nil
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
		var row resultRow
		if err := r.s.q(ctx).GetContext(ctx, &row, `INSERT INTO diagnostic_results
			(request_id, pod_statuses, events, log_tails, error, collected_at) VALUES ($1, $2, $3, $4, $5, $6)
			RETURNING `+resultCols,
			res.RequestID, res.PodStatuses, res.Events, res.LogTails, res.Error, res.CollectedAt); err != nil {
			return mapErr(err)
		}
		*res = row.domain()
		return nil
	})
	return ok, err
}
