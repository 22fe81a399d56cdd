package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
)

// Telemetry is the stack telemetry repository: pod log rows (lines and
// gaps) and Kubernetes events (docs/telemetry.md), and their retention.
type Telemetry struct{ s *Store }

// NewTelemetry returns the telemetry repository over s.
func NewTelemetry(s *Store) *Telemetry { return &Telemetry{s: s} }

var (
	_ telemetry.Store              = (*Telemetry)(nil)
	_ housekeeping.TelemetryPurger = (*Telemetry)(nil)
)

// AssociatedStacks keeps the live stacks among ids that the agent is
// associated with, by the target-state association rule (and the consent
// boundary when it is on), in one statement.
func (r *Telemetry) AssociatedStacks(ctx context.Context, agentID uuid.UUID, ids []uuid.UUID) ([]uuid.UUID, error) {
	out := []uuid.UUID{}
	err := r.s.q(ctx).SelectContext(ctx, &out, `SELECT id FROM stacks
		WHERE id = ANY($2::uuid[]) AND deleted_at IS NULL AND id IN (`+r.s.association()+`)`, agentID, uuidStrings(ids))
	return out, mapErr(err)
}

// InsertTelemetry writes a batch with one statement per table.
func (r *Telemetry) InsertTelemetry(ctx context.Context, logs []telemetry.LogRecord, events []telemetry.EventRecord) error {
	return r.s.InTx(ctx, func(ctx context.Context) error {
		if len(logs) > 0 {
			n := len(logs)
			stacks, agents, kinds := make([]string, n), make([]string, n), make([]string, n)
			nss, pods, ctrs, lines := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			ts := make([]time.Time, n)
			dropped, reasons := make([]*int64, n), make([]*string, n)
			for i, l := range logs {
				stacks[i], agents[i], kinds[i] = l.StackID.String(), l.AgentID.String(), l.Kind
				nss[i], pods[i], ctrs[i], lines[i], ts[i] = l.Namespace, l.Pod, l.Container, l.Line, l.TS
				dropped[i], reasons[i] = l.DroppedCount, l.Reason
			}
			if _, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO stack_pod_logs
				(stack_id, agent_id, kind, namespace, pod, container, ts, line, dropped_count, reason)
				SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
				                     $7::timestamptz[], $8::text[], $9::bigint[], $10::text[])`,
				stacks, agents, kinds, nss, pods, ctrs, ts, lines, dropped, reasons); err != nil {
				return mapErr(err)
			}
		}
		if len(events) == 0 {
			return nil
		}
		n := len(events)
		stacks, agents, reasons, msgs, types := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		observed, sources, objects := make([]time.Time, n), make([]*string, n), make([]string, n)
		for i, e := range events {
			obj, err := json.Marshal(e.InvolvedObject)
			if err != nil {
				return err
			}
			stacks[i], agents[i], reasons[i], msgs[i], types[i] = e.StackID.String(), e.AgentID.String(), e.Reason, e.Message, e.EventType
			observed[i], sources[i], objects[i] = e.ObservedAt, e.Source, string(obj)
		}
		_, err := r.s.q(ctx).ExecContext(ctx, `INSERT INTO stack_k8s_events
			(stack_id, agent_id, observed_at, reason, message, event_type, source, involved_object)
			SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
			                     $7::text[], $8::jsonb[])`,
			stacks, agents, observed, reasons, msgs, types, sources, objects)
		return mapErr(err)
	})
}

// k8sEventRow is an event as stored: involved_object is a JSONB column,
// read as raw JSON beside the record and decoded into it.
type k8sEventRow struct {
	telemetry.EventRecord
	InvolvedObject []byte `db:"involved_object"`
}

func (r k8sEventRow) domain() telemetry.EventRecord {
	e := r.EventRecord
	_ = json.Unmarshal(r.InvolvedObject, &e.InvolvedObject) // written by InsertTelemetry
	return e
}

// ListLogs returns up to limit rows of the stack created at or after
// since, newest first.
func (r *Telemetry) ListLogs(ctx context.Context, stackID uuid.UUID, since time.Time, limit int) ([]telemetry.LogRecord, error) {
	return selectAll[telemetry.LogRecord](ctx, r.s.q(ctx), `SELECT id, stack_id, agent_id, kind, namespace, pod, container, ts, line,
		dropped_count, reason, created_at FROM stack_pod_logs
		WHERE stack_id = $1 AND created_at >= $2 ORDER BY created_at DESC, seq DESC LIMIT $3`, stackID, since, limit)
}

// ListEvents is ListLogs for Kubernetes events.
func (r *Telemetry) ListEvents(ctx context.Context, stackID uuid.UUID, since time.Time, limit int) ([]telemetry.EventRecord, error) {
	return selectAs[k8sEventRow](ctx, r.s.q(ctx), `SELECT id, stack_id, agent_id, observed_at, reason, message, event_type,
		source, involved_object, created_at FROM stack_k8s_events
		WHERE stack_id = $1 AND created_at >= $2 ORDER BY created_at DESC, seq DESC LIMIT $3`, stackID, since, limit)
}

func (r *Telemetry) oldest(ctx context.Context, table string, stackID uuid.UUID, since time.Time) (*time.Time, error) {
	var at *time.Time
	err := r.s.q(ctx).GetContext(ctx, &at, `SELECT min(created_at) FROM `+table+` WHERE stack_id = $1 AND created_at >= $2`, stackID, since)
	if at != nil {
		u := at.UTC()
		at = &u
	}
	return at, mapErr(err)
}

// OldestLog returns the created_at of the stack's oldest log row at or
// after since.
func (r *Telemetry) OldestLog(ctx context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error) {
	return r.oldest(ctx, "stack_pod_logs", stackID, since)
}

// OldestEvent is OldestLog for events.
func (r *Telemetry) OldestEvent(ctx context.Context, stackID uuid.UUID, since time.Time) (*time.Time, error) {
	return r.oldest(ctx, "stack_k8s_events", stackID, since)
}

var telemetryTables = []string{"stack_pod_logs", "stack_k8s_events"}

// PurgeTelemetry deletes up to batch rows of each table created before
// cutoff, skipping rows another replica is deleting.
func (r *Telemetry) PurgeTelemetry(ctx context.Context, cutoff time.Time, batch int) (int, error) {
	total := 0
	for _, table := range telemetryTables {
		res, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM `+table+` WHERE id IN (
			SELECT id FROM `+table+` WHERE created_at < $1 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, cutoff, batch)
		if err != nil {
			return total, mapErr(err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}

// CapTelemetry deletes, per stack and table, up to batch of the oldest rows
// beyond perStack. The stacks over the cap are found with one grouped
// (index-only) scan per table; each is then trimmed below its cut-off row.
func (r *Telemetry) CapTelemetry(ctx context.Context, perStack, batch int) (int, error) {
	total := 0
	for _, table := range telemetryTables {
		var over []uuid.UUID
		if err := r.s.q(ctx).SelectContext(ctx, &over, `SELECT stack_id FROM `+table+`
			GROUP BY stack_id HAVING count(*) > $1`, perStack); err != nil {
			return total, mapErr(err)
		}
		for _, stackID := range over {
			// The newest perStack rows stay; of the rest, the oldest batch go.
			res, err := r.s.q(ctx).ExecContext(ctx, `DELETE FROM `+table+` WHERE id IN (
				SELECT id FROM (SELECT id, created_at, seq FROM `+table+` WHERE stack_id = $1
				                ORDER BY created_at DESC, seq DESC OFFSET $2) x
				ORDER BY created_at, seq LIMIT $3)`, stackID, perStack, batch)
			if err != nil {
				return total, mapErr(err)
			}
			n, _ := res.RowsAffected()
			total += int(n)
		}
	}
	return total, nil
}
