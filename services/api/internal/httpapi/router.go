package httpapi

import (
	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
)

// Services are the use cases the API exposes.
type Services struct {
	Auth         authn.Authenticator
	Agents       *agents.Service
	TargetState  *targetstate.Service
	Generators   *generators.Service
	Stacks       *stacks.Service
	AuditLog     *auditlog.Service
	ConfigReload *configreload.Service
}

// Register mounts every /api/v1 route on r. Extra middleware (CORS) runs
// before authentication.
func Register(r gin.IRouter, s Services, middleware ...gin.HandlerFunc) {
	v1 := r.Group("/api/v1", middleware...)
	v1.Use(authenticate(s.Auth))

	v1.POST("/auth/pak", verifyPAK)

	a := agentHandlers{svc: s.Agents, state: s.TargetState}
	v1.GET("/agents", a.list)
	v1.POST("/agents", a.create)
	v1.GET("/agents/", a.search)
	v1.GET("/agents/:id", a.get)
	v1.PUT("/agents/:id", a.update)
	v1.DELETE("/agents/:id", a.remove)
	v1.GET("/agents/:id/events", a.events)
	v1.POST("/agents/:id/events", a.reportEvent)
	v1.GET("/agents/:id/labels", a.labels)
	v1.POST("/agents/:id/labels", a.addLabel)
	v1.DELETE("/agents/:id/labels/:label", a.removeLabel)
	v1.GET("/agents/:id/annotations", a.annotations)
	v1.POST("/agents/:id/annotations", a.addAnnotation)
	v1.DELETE("/agents/:id/annotations/:key", a.removeAnnotation)
	v1.GET("/agents/:id/targets", a.targets)
	v1.POST("/agents/:id/targets", a.addTarget)
	v1.DELETE("/agents/:id/targets/:stack_id", a.removeTarget)
	v1.GET("/agents/:id/target-state", a.targetState)
	v1.GET("/agents/:id/stacks", a.stacks)
	v1.POST("/agents/:id/heartbeat", a.heartbeat)
	v1.POST("/agents/:id/rotate-pak", a.rotate)
	v1.GET("/agent-events", a.allEvents)
	v1.GET("/agent-events/:id", a.getEvent)

	g := generatorHandlers{svc: s.Generators}
	v1.GET("/generators", g.list)
	v1.POST("/generators", g.create)
	v1.GET("/generators/:id", g.get)
	v1.PUT("/generators/:id", g.update)
	v1.DELETE("/generators/:id", g.remove)
	v1.POST("/generators/:id/rotate-pak", g.rotate)

	st := stackHandlers{svc: s.Stacks}
	v1.GET("/stacks", st.list)
	v1.POST("/stacks", st.create)
	v1.GET("/stacks/:id", st.get)
	v1.PUT("/stacks/:id", st.update)
	v1.DELETE("/stacks/:id", st.remove)
	v1.GET("/stacks/:id/labels", st.labels)
	v1.POST("/stacks/:id/labels", st.addLabel)
	v1.DELETE("/stacks/:id/labels/:label", st.removeLabel)
	v1.GET("/stacks/:id/annotations", st.annotations)
	v1.POST("/stacks/:id/annotations", st.addAnnotation)
	v1.DELETE("/stacks/:id/annotations/:key", st.removeAnnotation)
	v1.GET("/stacks/:id/deployment-objects", st.deploymentObjects)
	v1.POST("/stacks/:id/deployment-objects", st.createDeploymentObject)
	v1.GET("/deployment-objects/:id", st.getDeploymentObject)

	ad := adminHandlers{audit: s.AuditLog, reload: s.ConfigReload}
	v1.GET("/admin/audit-logs", ad.auditLogs)
	v1.POST("/admin/config/reload", ad.reloadConfig)
}
