package stacks

import (
	"context"
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
)

// DependencyRepository stores which stacks a stack depends on
// (docs/dependencies.md). Reading a stack (StackRepository) returns its
// dependencies in DependsOn.
type DependencyRepository interface {
	// LockDependencies serialises changes to the dependency graph, and
	// stack deletions, until the transaction ends.
	LockDependencies(ctx context.Context) error
	// Dependencies returns what each of ids depends on; stacks without
	// dependencies are absent.
	Dependencies(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]uuid.UUID, error)
	// SetDependencies replaces the stack's dependencies with deps.
	SetDependencies(ctx context.Context, stackID uuid.UUID, deps []uuid.UUID) error
	// Dependents returns the live stacks that depend on stackID, by id.
	Dependents(ctx context.Context, stackID uuid.UUID) ([]uuid.UUID, error)
}

// WithheldReader tells which stacks an agent does not receive yet because
// of their dependencies.
type WithheldReader interface {
	// Withheld returns the live stacks associated with the agent whose
	// latest object the agent does not receive because a dependency is
	// not ready there, with what each waits for, by stack id.
	Withheld(ctx context.Context, agentID uuid.UUID) ([]stack.Withheld, error)
}

// Dependency errors (docs/error-codes.md).
var (
	errDependencySelf  = domain.UnprocessableCode("dependency_cycle", "A stack cannot depend on itself")
	errDependencyCycle = domain.UnprocessableCode("dependency_cycle", "depends_on would create a dependency cycle")
)

func errDependencyNotFound(id uuid.UUID) error {
	return domain.WithFields(domain.UnprocessableCode("dependency_not_found", "Dependency stack not found: "+id.String()),
		map[string]any{"stack_id": id})
}

func errDependencyOwner(id uuid.UUID) error {
	return domain.WithFields(domain.UnprocessableCode("dependency_cross_generator",
		"A stack may only depend on stacks of the same generator (system stacks on system stacks): "+id.String()),
		map[string]any{"stack_id": id})
}

// normaliseDependencies sorts and de-duplicates a depends_on list and
// checks its length.
func normaliseDependencies(deps []uuid.UUID) ([]uuid.UUID, error) {
	out := slices.Clone(deps)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	out = slices.Compact(out)
	if len(out) > stack.MaxDependencies {
		return nil, domain.Invalid("depends_on cannot list more than 50 stacks")
	}
	for _, id := range out {
		if id == uuid.Nil {
			return nil, domain.Invalid("depends_on cannot contain the nil UUID")
		}
	}
	return out, nil
}

// setDependencies checks and stores st's new dependencies inside the
// caller's transaction: each must be a live stack with st's owner, and
// none may lead back to st. It returns the stored list.
func (s *Service) setDependencies(ctx context.Context, st stack.Stack, deps []uuid.UUID) ([]uuid.UUID, error) {
	deps, err := normaliseDependencies(deps)
	if err != nil {
		return nil, err
	}
	if err := s.repos.Dependencies.LockDependencies(ctx); err != nil {
		return nil, err
	}
	for _, id := range deps {
		if id == st.ID {
			return nil, errDependencySelf
		}
		dep, err := s.repos.Stacks.GetStack(ctx, id)
		if errors.Is(err, domain.ErrNotFound) {
			return nil, errDependencyNotFound(id)
		}
		if err != nil {
			return nil, err
		}
		if !sameOwner(st, dep) {
			return nil, errDependencyOwner(id)
		}
	}
	if err := s.checkAcyclic(ctx, st.ID, deps); err != nil {
		return nil, err
	}
	if err := s.repos.Dependencies.SetDependencies(ctx, st.ID, deps); err != nil {
		return nil, err
	}
	return deps, nil
}

func sameOwner(a, b stack.Stack) bool {
	if a.GeneratorID == nil || b.GeneratorID == nil {
		return a.GeneratorID == nil && b.GeneratorID == nil
	}
	return *a.GeneratorID == *b.GeneratorID
}

// checkAcyclic walks the graph from deps, a level at a time, and fails
// when it reaches id: id depending on deps would close a cycle.
func (s *Service) checkAcyclic(ctx context.Context, id uuid.UUID, deps []uuid.UUID) error {
	seen := map[uuid.UUID]bool{}
	frontier := slices.Clone(deps)
	for len(frontier) > 0 {
		next, err := s.repos.Dependencies.Dependencies(ctx, frontier)
		if err != nil {
			return err
		}
		frontier = frontier[:0]
		for _, ds := range next {
			for _, d := range ds {
				if d == id {
					return errDependencyCycle
				}
				if !seen[d] {
					seen[d] = true
					frontier = append(frontier, d)
				}
			}
		}
	}
	return nil
}

// refuseIfDependedOn fails with 409 when live stacks depend on id: deleting
// it would leave them waiting forever (docs/dependencies.md#deletion).
func (s *Service) refuseIfDependedOn(ctx context.Context, id uuid.UUID) error {
	if err := s.repos.Dependencies.LockDependencies(ctx); err != nil {
		return err
	}
	dependents, err := s.repos.Dependencies.Dependents(ctx, id)
	if err != nil || len(dependents) == 0 {
		return err
	}
	return domain.WithFields(domain.ConflictCode("stack_has_dependents",
		"Other stacks depend on this stack; remove it from their depends_on first"),
		map[string]any{"dependents": dependents})
}

// Withheld explains an agent's target state: the stacks whose latest
// object it does not receive yet because of their dependencies. The admin
// or the agent itself, as for the target state.
func (s *Service) Withheld(ctx context.Context, p identity.Principal, agentID uuid.UUID) ([]stack.Withheld, error) {
	if !p.IsAdmin() && !p.IsAgent(agentID) {
		return nil, domain.Forbidden("Unauthorized")
	}
	return s.repos.Withheld.Withheld(ctx, agentID)
}
