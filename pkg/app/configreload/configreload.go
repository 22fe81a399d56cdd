// Package configreload re-reads the configuration on an admin's request,
// applies the hot-reloadable keys and drops every replica's auth cache (the
// docs' answer to a CLI rotation that the cache has not seen yet).
package configreload

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// Reloader re-reads settings and reports the hot keys that changed.
type Reloader interface {
	Reload() ([]config.Change, error)
}

// CacheFlusher drops every cached PAK on every api replica.
type CacheFlusher interface {
	InvalidateAll(ctx context.Context) error
}

// Result is the original's response body.
type Result struct {
	ReloadedAt time.Time       `json:"reloaded_at"`
	Changes    []config.Change `json:"changes"`
	Success    bool            `json:"success"`
	Message    string          `json:"message"`
}

// Service implements the reload use case.
type Service struct {
	reloader Reloader
	flusher  CacheFlusher
	recorder journal.Recorder
}

// NewService wires the use case.
func NewService(r Reloader, f CacheFlusher, rec journal.Recorder) *Service {
	return &Service{reloader: r, flusher: f, recorder: rec}
}

// Reload applies the configuration (admin only).
func (s *Service) Reload(ctx context.Context, p identity.Principal) (Result, error) {
	if !p.IsAdmin() {
		return Result{}, domain.ForbiddenCode("admin_required", "Admin access required")
	}
	changes, err := s.reloader.Reload()
	if err != nil {
		return Result{}, &domain.Error{Kind: domain.ErrInvalid, Msg: "configuration reload failed: " + err.Error(), Cause: err}
	}
	if changes == nil {
		changes = []config.Change{}
	}
	if err := s.flusher.InvalidateAll(ctx); err != nil {
		return Result{}, domain.Unavailable("could not flush the auth cache", err)
	}
	msg := "No changes detected"
	if len(changes) > 0 {
		msg = fmt.Sprintf("%d setting(s) updated", len(changes))
	}
	keys := make([]string, len(changes))
	for i, c := range changes {
		keys[i] = c.Key
	}
	if err := s.recorder.Audit(ctx, journal.Entry(ctx, p, audit.ActionConfigReloaded, "config", uuid.Nil,
		map[string]any{"changed_keys": keys})); err != nil {
		return Result{}, err
	}
	return Result{ReloadedAt: time.Now().UTC(), Changes: changes, Success: true, Message: msg}, nil
}
