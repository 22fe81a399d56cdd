package paks

import (
	"context"

	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// TenantLister lists the named PAK owners a scope selector offers: the
// live generators other than the system generator, by name.
type TenantLister interface {
	ListTenants(ctx context.Context) ([]generator.Tenant, error)
}

// ListReaders may list the tenants (GET /paks): the admin only, as in 0.9.1
// (403 admin_required for anybody else).
var ListReaders = policy.Allow(domain.ForbiddenCode("admin_required", "Unauthorized"), policy.Admin)

// Tenants serves GET /paks: PAK metadata, never a PAK or its hash
// (docs/compatibility.md#paks-listing).
type Tenants struct{ store TenantLister }

// NewTenants wires the listing.
func NewTenants(store TenantLister) *Tenants { return &Tenants{store: store} }

// List returns every tenant, as {id, name}; the system generator is never
// listed.
func (t *Tenants) List(ctx context.Context, p identity.Principal) ([]generator.Tenant, error) {
	if err := ListReaders.Check(p); err != nil {
		return nil, err
	}
	return t.store.ListTenants(ctx)
}
