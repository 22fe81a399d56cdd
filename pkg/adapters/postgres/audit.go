package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/brokkr-go/brokkr/pkg/domain/audit"
)

// AuditLog reads the audit log (entries are written by Store.Audit inside
// each use case's transaction).
type AuditLog struct{ s *Store }

// NewAuditLog returns the audit-log reader over s.
func NewAuditLog(s *Store) *AuditLog { return &AuditLog{s: s} }

// details is NULL for entries without details; json.RawMessage cannot scan
// a NULL, so it is read as the JSON literal null (rendered as null).
const auditCols = `id, timestamp, actor_type, actor_id, action, resource_type, resource_id,
	COALESCE(details, 'null'::jsonb) AS details, ip_address, user_agent, created_at`

// QueryAudit lists audit entries matching f, newest first, with the total.
func (r *AuditLog) QueryAudit(ctx context.Context, f audit.Filter) ([]audit.Entry, int, error) {
	var w filter
	if f.ActorType != "" {
		w.add("actor_type = $%d", f.ActorType)
	}
	if f.ActorID != nil {
		w.add("actor_id = $%d", *f.ActorID)
	}
	if f.Action != "" {
		if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
			// Escape LIKE metacharacters so "agent_" matches literally.
			prefix = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(strings.TrimSuffix(prefix, "."))
			if strings.HasSuffix(f.Action, ".*") {
				prefix += "."
			}
			w.add("action LIKE $%d", prefix+"%")
		} else {
			w.add("action = $%d", f.Action)
		}
	}
	if f.ResourceType != "" {
		w.add("resource_type = $%d", f.ResourceType)
	}
	if f.ResourceID != nil {
		w.add("resource_id = $%d", *f.ResourceID)
	}
	if f.From != nil {
		w.add("timestamp >= $%d", *f.From)
	}
	if f.To != nil {
		w.add("timestamp < $%d", *f.To)
	}
	var total int
	if err := r.s.q(ctx).GetContext(ctx, &total, `SELECT count(*) FROM audit_logs`+w.where(), w.args...); err != nil {
		return nil, 0, mapErr(err)
	}
	q := fmt.Sprintf(`SELECT `+auditCols+` FROM audit_logs`+w.where()+` ORDER BY timestamp DESC, id LIMIT $%d OFFSET $%d`,
		w.arg(f.Limit), w.arg(f.Offset))
	out, err := selectAll[audit.Entry](ctx, r.s.q(ctx), q, w.args...)
	return out, total, err
}
