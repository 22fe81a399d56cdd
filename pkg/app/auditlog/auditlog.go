// Package auditlog answers admin queries over the audit trail.
package auditlog

import (
	"context"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Store reads audit entries.
type Store interface {
	QueryAudit(ctx context.Context, f audit.Filter) (entries []audit.Entry, total int, err error)
}

// Page is the response envelope of GET /admin/audit-logs.
type Page struct {
	Logs   []audit.Entry `json:"logs"`
	Total  int           `json:"total"`
	Count  int           `json:"count"`
	Limit  int           `json:"limit"`
	Offset int           `json:"offset"`
}

// Limits of the listing (the original's).
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Service implements the audit query.
type Service struct{ store Store }

// NewService wires the use case.
func NewService(store Store) *Service { return &Service{store: store} }

// Query lists entries newest first (admin only).
func (s *Service) Query(ctx context.Context, p identity.Principal, f audit.Filter) (Page, error) {
	if !p.IsAdmin() {
		return Page{}, domain.ForbiddenCode("admin_required", "Admin access required")
	}
	switch {
	case f.Limit < 0:
		return Page{}, domain.Invalid("limit must not be negative")
	case f.Offset < 0:
		return Page{}, domain.Invalid("offset must not be negative")
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	if f.ActorType != "" {
		switch identity.Role(f.ActorType) {
		case identity.RoleAdmin, identity.RoleAgent, identity.RoleGenerator, identity.RoleSystem:
		default:
			return Page{}, domain.Invalid("actor_type must be admin, agent, generator or system")
		}
	}
	logs, total, err := s.store.QueryAudit(ctx, f)
	if err != nil {
		return Page{}, err
	}
	return Page{Logs: logs, Total: total, Count: len(logs), Limit: f.Limit, Offset: f.Offset}, nil
}
