package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/policy"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Route guards run the use cases' role policies before a handler decodes its
// body, so a caller without the role gets 403 rather than a validation error
// (docs/compatibility.md#check-order). The use cases check again: they are the
// authority.

func guard(pol policy.Policy) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := pol.Check(principal(c)); err != nil {
			httpserver.Fail(c, err)
		}
	}
}

// guardID is guard for policies about the principal and the :id path param.
func guardID(pol policy.Policy) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		if err := pol.CheckID(principal(c), id); err != nil {
			httpserver.Fail(c, err)
		}
	}
}

// loadFn reads the :id resource as the caller would, failing with 403 when
// the caller may not touch that row and 404 when it does not exist.
type loadFn func(ctx context.Context, p identity.Principal, id uuid.UUID) error

// guardLoad runs a use case's read of the :id resource before a handler
// decodes its body, for routes whose ownership needs the row (a stack's
// generator) or whose resource may be missing: 403 and 404 then come before
// 400/422 (docs/compatibility.md#check-order).
func guardLoad(load loadFn) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		if err := load(c.Request.Context(), principal(c), id); err != nil {
			httpserver.Fail(c, err)
		}
	}
}

// guardFound is guardLoad over a use case's read of the :id row, for
// routes that need only the 403 or 404 that read answers, not the row.
func guardFound[T any](get func(context.Context, identity.Principal, uuid.UUID) (T, error)) gin.HandlerFunc {
	return guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		_, err := get(ctx, p, id)
		return err
	})
}

var (
	adminOnly          = guard(agents.AdminOnly)
	agentAdminOrSelf   = guardID(agents.AdminOrSelf)
	agentSelf          = guardID(agents.SelfOnly)
	generatorAdminOnly = guard(generators.AdminOnly)
	generatorOrAdmin   = guardID(generators.AdminOrSelf)
	adminOrGenerator   = guard(stacks.AdminOrGenerator)
	templateRole       = guard(templates.AdminOrGenerator)

	registrationChanger    = guard(registrations.Changers)
	registrationsReader    = guardID(registrations.AgentReaders)
	registeredAgentsReader = guardID(registrations.GeneratorReaders)
)
