package configreload_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

type reloader struct {
	changes []config.Change
	err     error
	calls   int
}

func (r *reloader) Reload() ([]config.Change, error) { r.calls++; return r.changes, r.err }

type flusher struct {
	err   error
	calls int
}

func (f *flusher) InvalidateAll(context.Context) error { f.calls++; return f.err }

func TestReload(t *testing.T) {
	ctx := context.Background()
	one := []config.Change{{Key: "broker.auth_cache_ttl_seconds", OldValue: "60", NewValue: "30"}}
	for _, c := range []struct {
		name        string
		caller      identity.Principal
		changes     []config.Change
		reloadErr   error
		flushErr    error
		want        error
		msg         string
		flushes     int
		auditedKeys []string
	}{
		{"no change", identity.Admin, nil, nil, nil, nil, "No changes detected", 1, []string{}},
		{"one change", identity.Admin, one, nil, nil, nil, "1 setting(s) updated", 1, []string{"broker.auth_cache_ttl_seconds"}},
		{"agent", identity.Agent(uuid.New()), one, nil, nil, domain.ErrForbidden, "", 0, nil},
		{"generator", identity.Generator(uuid.New()), one, nil, nil, domain.ErrForbidden, "", 0, nil},
		{"a bad file is the caller's to fix", identity.Admin, nil, errors.New("parse error"), nil, domain.ErrInvalid, "", 0, nil},
		{"redis down", identity.Admin, one, nil, errors.New("refused"), domain.ErrUnavailable, "", 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, f, j := &reloader{changes: c.changes, err: c.reloadErr}, &flusher{err: c.flushErr}, &journaltest.Journal{}
			res, err := configreload.NewService(r, f, j).Reload(ctx, c.caller)
			if f.calls != c.flushes {
				t.Errorf("cache flushed %d times, want %d", f.calls, c.flushes)
			}
			if c.want != nil {
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
				if len(j.Audits()) != 0 {
					t.Fatal("a failed reload is not audited")
				}
				return
			}
			if err != nil || !res.Success || res.Message != c.msg || res.Changes == nil || res.ReloadedAt.IsZero() {
				t.Fatalf("result %+v %v", res, err)
			}
			a := j.Audits()
			if len(a) != 1 || a[0].Action != audit.ActionConfigReloaded {
				t.Fatalf("audit %+v", a)
			}
			if keys := auditedKeys(t, a[0]); !slices.Equal(keys, c.auditedKeys) {
				t.Fatalf("audited keys %v, want %v", keys, c.auditedKeys)
			}
		})
	}
}

func auditedKeys(t *testing.T, e audit.Entry) []string {
	t.Helper()
	var d struct {
		Keys []string `json:"changed_keys"`
	}
	if err := json.Unmarshal(e.Details, &d); err != nil {
		t.Fatal(err)
	}
	if d.Keys == nil {
		return []string{}
	}
	return d.Keys
}
