package httpapi

import (
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Route guards run the use cases' role policies before a handler decodes
// its body, so a caller without the role gets 403 rather than a validation
// error (DECISIONS 2). The use cases check again: they are the authority.

func guard(check func(p identity.Principal) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := check(principal(c)); err != nil {
			fail(c, err)
		}
	}
}

// guardID is guard for policies about the principal and the :id path param.
func guardID(check func(p identity.Principal, id uuid.UUID) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := pathID(c, "id")
		if !ok {
			return
		}
		if err := check(principal(c), id); err != nil {
			fail(c, err)
		}
	}
}

var (
	adminOnly          = guard(agents.RequireAdmin)
	agentAdminOrSelf   = guardID(agents.RequireAdminOrSelf)
	agentSelf          = guardID(agents.RequireSelf)
	generatorAdminOnly = guard(generators.RequireAdmin)
	generatorOrAdmin   = guardID(generators.RequireAdminOrSelf)
	adminOrGenerator   = guard(stacks.RequireAdminOrGenerator)
)
