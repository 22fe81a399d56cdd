// Package generators holds the generator use cases: CI/CD identities that
// own stacks and templates.
package generators

import (
	"context"
	"strings"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/generator"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// GeneratorRepository stores generators.
type GeneratorRepository interface {
	ListGenerators(ctx context.Context) ([]generator.Generator, error)
	CreateGenerator(ctx context.Context, g *generator.Generator) error
	GetGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error)
	UpdateGenerator(ctx context.Context, id uuid.UUID, fn func(*generator.Generator) error) (generator.Generator, error)
	// DeleteGenerator soft-deletes the generator; its stacks follow (each
	// with a deletion marker) and its templates.
	DeleteGenerator(ctx context.Context, id uuid.UUID) (generator.Generator, error)
}

// StackLister lists live stacks, here a generator's own (the ones its
// deletion removes).
type StackLister interface {
	ListStacks(ctx context.Context, generatorID *uuid.UUID) ([]stack.Stack, error)
}

// Repos are the ports the generator use cases persist through; every
// repository joins the transaction Tx carries in the context.
type Repos struct {
	Tx         journal.Transactor
	Journal    journal.Recorder
	Generators GeneratorRepository
	Stacks     StackLister
}

// ChangeNotifier tells target state which stacks a generator deletion
// removed: only the agents associated with them are looked at again.
type ChangeNotifier interface {
	StackChanged(ctx context.Context, stackID uuid.UUID)
}

// Service implements the generator use cases.
type Service struct {
	repos   Repos
	creds   authn.Credentials
	changes ChangeNotifier
}

// NewService wires the use cases.
func NewService(repos Repos, paks authn.PAKIssuer, inval authn.Invalidator, changes ChangeNotifier) *Service {
	return &Service{repos: repos, creds: authn.Credentials{Issuer: paks, Inval: inval}, changes: changes}
}

var errAdminOnly = domain.ForbiddenCode("admin_required", "Admin access required")

// Policies of the generator use cases; the HTTP layer runs the same values
// as route guards (see package policy).
var (
	AdminOnly = policy.Allow(errAdminOnly, policy.Admin)
	// AdminOrSelf admits the admin, the CLI (system) and the generator itself.
	AdminOrSelf = policy.Allow(domain.ForbiddenCode("generator_not_owned", "Unauthorized access"), policy.Admin, policy.System, policy.SelfGenerator)
)

func adminOrSelf(p identity.Principal, id uuid.UUID) error { return AdminOrSelf.CheckID(p, id) }

// The system generator carries every agent's system stacks: it is never
// deleted, renamed or given a PAK (0.9.1: cannot_delete_system_generator).
func systemGuard(id uuid.UUID, code string) error {
	if id == generator.SystemID {
		return domain.WithCode(domain.Forbidden("The system generator cannot be changed or deleted"), code)
	}
	return nil
}

// CreateInput is the body of POST /generators.
type CreateInput struct {
	Name        string
	Description *string
}

func validateName(name string) error {
	if strings.TrimSpace(name) == "" {
		return domain.Invalid("name cannot be empty")
	}
	if len(name) > 255 {
		return domain.Invalid("name cannot exceed 255 characters")
	}
	return nil
}

// List returns every live generator (admin only).
func (s *Service) List(ctx context.Context, p identity.Principal) ([]generator.Generator, error) {
	if err := AdminOnly.Check(p); err != nil {
		return nil, err
	}
	return s.repos.Generators.ListGenerators(ctx)
}

// Create registers a generator and returns its PAK, shown once.
func (s *Service) Create(ctx context.Context, p identity.Principal, in CreateInput) (generator.Generator, secret.String, error) {
	if !p.IsAdmin() && p.Role != identity.RoleSystem {
		return generator.Generator{}, "", errAdminOnly
	}
	if err := validateName(in.Name); err != nil {
		return generator.Generator{}, "", err
	}
	pak, hash, err := s.creds.Issue(ctx, "Failed to create PAK")
	if err != nil {
		return generator.Generator{}, "", err
	}
	g := generator.Generator{Name: in.Name, Description: in.Description, IsActive: true, PakHash: &hash}
	err = s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		if err := s.repos.Generators.CreateGenerator(ctx, &g); err != nil {
			return domain.Rephrase(err, domain.ErrConflict, "A generator with this name already exists")
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionGeneratorCreated, "generator", g.ID,
			map[string]any{"name": g.Name}))
	})
	if err != nil {
		return generator.Generator{}, "", err
	}
	return g, pak, nil
}

// Get returns one generator (admin or itself).
func (s *Service) Get(ctx context.Context, p identity.Principal, id uuid.UUID) (generator.Generator, error) {
	if err := adminOrSelf(p, id); err != nil {
		return generator.Generator{}, err
	}
	return s.repos.Generators.GetGenerator(ctx, id)
}

// UpdateInput is a partial update. ClearDescription sets it to null.
type UpdateInput struct {
	Name             *string
	Description      *string
	ClearDescription bool
	IsActive         *bool
}

// Update changes a generator (admin or itself).
func (s *Service) Update(ctx context.Context, p identity.Principal, id uuid.UUID, in UpdateInput) (generator.Generator, error) {
	if err := adminOrSelf(p, id); err != nil {
		return generator.Generator{}, err
	}
	if err := systemGuard(id, "cannot_modify_system_generator"); err != nil {
		return generator.Generator{}, err
	}
	var out generator.Generator
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.repos.Generators.UpdateGenerator(ctx, id, func(g *generator.Generator) error {
			if in.Name != nil {
				g.Name = *in.Name
			}
			switch {
			case in.ClearDescription:
				g.Description = nil
			case in.Description != nil:
				g.Description = in.Description
			}
			if in.IsActive != nil {
				g.IsActive = *in.IsActive
			}
			return validateName(g.Name)
		})
		if err != nil {
			return domain.Rephrase(err, domain.ErrConflict, "A generator with this name already exists")
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionGeneratorUpdated, "generator", id,
			map[string]any{"name": out.Name, "is_active": out.IsActive}))
	})
	if err == nil && !out.IsActive {
		// A deactivated generator's PAK stops authenticating (the auth
		// lookup skips inactive generators); forget cached verifications.
		s.creds.Revoke(ctx, hashOf(out))
	}
	return out, err
}

// Delete soft-deletes a generator with its stacks and templates.
func (s *Service) Delete(ctx context.Context, p identity.Principal, id uuid.UUID) error {
	if err := adminOrSelf(p, id); err != nil {
		return err
	}
	if err := systemGuard(id, "cannot_delete_system_generator"); err != nil {
		return err
	}
	var g generator.Generator
	var owned []stack.Stack
	err := s.repos.Tx.InTx(ctx, func(ctx context.Context) error {
		var err error
		// The stacks the deletion cascades to, read in the same transaction.
		if owned, err = s.repos.Stacks.ListStacks(ctx, &id); err != nil {
			return err
		}
		if g, err = s.repos.Generators.DeleteGenerator(ctx, id); err != nil {
			return err
		}
		return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionGeneratorDeleted, "generator", id, nil))
	})
	if err != nil {
		return err
	}
	s.creds.Revoke(ctx, hashOf(g))
	for _, st := range owned {
		s.changes.StackChanged(ctx, st.ID)
	}
	return nil
}

// RotatePAK issues a new PAK for the generator; the old one fails at once.
func (s *Service) RotatePAK(ctx context.Context, p identity.Principal, id uuid.UUID) (generator.Generator, secret.String, error) {
	if err := adminOrSelf(p, id); err != nil {
		return generator.Generator{}, "", err
	}
	if err := systemGuard(id, "cannot_modify_system_generator"); err != nil {
		return generator.Generator{}, "", err
	}
	if _, err := s.repos.Generators.GetGenerator(ctx, id); err != nil {
		return generator.Generator{}, "", err
	}
	return authn.RotateRecord(ctx, s.creds, s.repos.Tx.InTx,
		func(ctx context.Context, hash string) (out generator.Generator, old string, err error) {
			out, err = s.repos.Generators.UpdateGenerator(ctx, id, func(g *generator.Generator) error {
				old, g.PakHash = hashOf(*g), &hash
				return nil
			})
			return out, old, err
		},
		func(ctx context.Context, g generator.Generator) error {
			return s.repos.Journal.Audit(ctx, journal.Entry(ctx, p, audit.ActionPakRotated, "generator", id,
				map[string]any{"generator_name": g.Name}))
		})
}

// hashOf is the generator's PAK hash, "" when it has none.
func hashOf(g generator.Generator) string {
	if g.PakHash == nil {
		return ""
	}
	return *g.PakHash
}
