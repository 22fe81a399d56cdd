package auditlog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// store answers with n entries and remembers the filter it was asked.
type store struct {
	got *audit.Filter
	n   int
}

func (s *store) QueryAudit(_ context.Context, f audit.Filter) ([]audit.Entry, int, error) {
	s.got = &f
	return make([]audit.Entry, s.n), 42, nil
}

func TestQuery(t *testing.T) {
	cases := []struct {
		name      string
		p         identity.Principal
		f         audit.Filter
		want      error
		wantLimit int
	}{
		{name: "default limit", p: identity.Admin, wantLimit: auditlog.DefaultLimit},
		{name: "limit kept", p: identity.Admin, f: audit.Filter{Limit: 7}, wantLimit: 7},
		{name: "limit capped", p: identity.Admin, f: audit.Filter{Limit: 5000}, wantLimit: auditlog.MaxLimit},
		{name: "negative limit", p: identity.Admin, f: audit.Filter{Limit: -1}, want: domain.ErrInvalid},
		{name: "negative offset", p: identity.Admin, f: audit.Filter{Offset: -1}, want: domain.ErrInvalid},
		{name: "known actor type", p: identity.Admin, f: audit.Filter{ActorType: "generator"}, wantLimit: auditlog.DefaultLimit},
		{name: "unknown actor type", p: identity.Admin, f: audit.Filter{ActorType: "robot"}, want: domain.ErrInvalid},
		{name: "agent refused", p: identity.Agent(uuid.New()), want: domain.ErrForbidden},
		{name: "role before validation", p: identity.Generator(uuid.New()), f: audit.Filter{Limit: -1}, want: domain.ErrForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &store{n: 3}
			page, err := auditlog.NewService(st).Query(context.Background(), tc.p, tc.f)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || st.got != nil {
					t.Fatalf("err = %v, want %v (store asked: %v)", err, tc.want, st.got != nil)
				}
				return
			}
			if err != nil || st.got.Limit != tc.wantLimit || page.Limit != tc.wantLimit || page.Count != 3 || page.Total != 42 {
				t.Fatalf("Query = %+v, %v (store got %+v)", page, err, st.got)
			}
		})
	}
}
