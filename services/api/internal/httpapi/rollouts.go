package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/rollout"
)

// registerRollouts mounts the rollout routes under a stack
// (docs/rollouts.md): policy, status, control and rollback. Role scoping
// is the stack's: the admin or the owning generator.
func registerRollouts(v1 *gin.RouterGroup, s Services) {
	h := rolloutHandlers{svc: s.Rollouts}
	role := guard(stacks.AdminOrGenerator)
	owned := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		_, err := s.Stacks.Get(ctx, p, id)
		return err
	})
	v1.GET("/stacks/:id/rollout-policy", role, byID(s.Rollouts.Policy))
	v1.PUT("/stacks/:id/rollout-policy", role, owned, h.putPolicy)
	v1.GET("/stacks/:id/rollout", role, byID(s.Rollouts.Status))
	for _, action := range []string{rollout.ActionPause, rollout.ActionResume, rollout.ActionPromote, rollout.ActionAbort} {
		v1.POST("/stacks/:id/rollout/"+action, role, h.control(action))
	}
	v1.POST("/stacks/:id/rollback", role, owned, h.rollback)
}

// wakeRollouts runs after an agent's event or health report: once the
// report is stored (2xx), the rollouts waiting for that agent are woken
// (rollouts.Wakeups), so a wave moves on without waiting for the periodic
// advance.
func wakeRollouts(s Services) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if s.RolloutWakeups == nil || c.Writer.Status() >= 300 {
			return
		}
		if id, err := uuid.Parse(c.Param("id")); err == nil {
			s.RolloutWakeups.AgentReported(context.WithoutCancel(c.Request.Context()), id)
		}
	}
}

type rolloutHandlers struct{ svc *rollouts.Service }

func (h rolloutHandlers) putPolicy(c *gin.Context) {
	var body rollout.Policy
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	out, err := h.svc.PutPolicy(c.Request.Context(), principal(c), id, body)
	respond(c, http.StatusOK, out, err)
}

func (h rolloutHandlers) control(action string) gin.HandlerFunc {
	return byID(func(ctx context.Context, p identity.Principal, id uuid.UUID) (rollouts.Status, error) {
		return h.svc.Control(ctx, p, id, action)
	})
}

func (h rolloutHandlers) rollback(c *gin.Context) {
	var body struct {
		ToSequenceID       *int64     `json:"to_sequence_id"`
		DeploymentObjectID *uuid.UUID `json:"deployment_object_id"`
	}
	id, ok := pathIDAndJSON(c, &body)
	if !ok {
		return
	}
	out, err := h.svc.Rollback(c.Request.Context(), principal(c), id, rollouts.RollbackInput{
		ToSequenceID: body.ToSequenceID, DeploymentObjectID: body.DeploymentObjectID})
	respond(c, http.StatusCreated, out, err)
}
