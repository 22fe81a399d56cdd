package httpapi

import (
	"context"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/labeling"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
)

// Services are the use cases the API exposes.
type Services struct {
	Auth authn.Authenticator
	// PAKs serves GET /paks.
	PAKs   *paks.Tenants
	Agents *agents.Service
	// AgentLabels and StackLabels serve the label and annotation routes
	// of agents and stacks (labels.go).
	AgentLabels *agents.Labels
	StackLabels *stacks.Labels
	TargetState *targetstate.Service
	Generators  *generators.Service
	// Registrations serves generator registration (registrations.go).
	Registrations *registrations.Service
	Stacks        *stacks.Service
	// Rollouts serves a stack's rollout policy, status, control and
	// rollback (rollouts.go).
	Rollouts *rollouts.Service
	// RolloutWakeups wakes rollouts waiting for an agent that reported
	// (nil: only the periodic advance moves them).
	RolloutWakeups *rollouts.Wakeups
	AuditLog       *auditlog.Service
	ConfigReload   *configreload.Service
	Templates      *templates.Service
	// Health and Diagnostics serve deployment health and on-demand
	// diagnostics (deploymenthealth.go).
	Health      *deploymenthealth.Service
	Diagnostics *diagnostics.Service
	// WorkOrders and WorkOrderSchedules serve /work-orders, /work-order-log
	// and /work-order-schedules (workorders.go).
	WorkOrders         *workorders.Service
	WorkOrderSchedules *workorders.Schedules
	// Webhooks serves /webhooks, the agent's pending deliveries and
	// /webhook-deliveries (webhooks.go).
	Webhooks *webhooks.Service
	// Fleet serves /fleet, /agents/{id}/fleet-status and
	// /admin/ws/connections (fleet.go).
	Fleet *fleet.Service
	// FleetLive serves the WebSocket GET /fleet/live (fleet_live.go).
	FleetLive *fleet.Live
	// Telemetry and TelemetryLive serve stack telemetry: the agent's
	// ingest, /stacks/{id}/logs and /events, and the WebSocket
	// /stacks/{id}/live (telemetry.go).
	Telemetry     *telemetry.Service
	TelemetryLive *telemetry.Hub
	// Idempotency honours Idempotency-Key on the routes of
	// idempotentRoutes; nil ignores the header.
	Idempotency *idempotency.Service
}

// Register mounts every /api/v1 route on r. Extra middleware (CORS) runs
// before authentication.
func Register(r gin.IRouter, s Services, middleware ...gin.HandlerFunc) {
	v1 := r.Group("/api/v1", middleware...)
	v1.Use(liftWSPAK, authenticate(s.Auth))
	if s.Idempotency != nil {
		v1.Use(idempotent(s.Idempotency))
	}

	v1.POST("/auth/pak", verifyPAK)
	// GET /paks: the tenants a scope selector offers, as 0.9.1's PakSummary
	// {id, name} (docs/compatibility.md#paks-listing).
	v1.GET("/paks", guard(paks.ListReaders), byPrincipal(s.PAKs.List))

	// Body routes under an :id load the row first (guardLoad).
	agentFound := guardFound(s.Agents.Get)
	generatorFound := guardFound(s.Generators.Get)
	stackOwned := guardFound(s.Stacks.Get)
	objectFound := guardFound(s.Stacks.GetDeploymentObject)
	// Only the request's agent submits a result; load before the body.
	diagnosticOwner := guardLoad(s.Diagnostics.CheckSubmit)
	templateOwned := guardLoad(s.Templates.CheckModify)

	a := agentHandlers{svc: s.Agents, state: s.TargetState, deps: s.Stacks}
	v1.GET("/agents", guard(agents.Listers), byPrincipal(s.Agents.List))
	v1.POST("/agents", adminOnly, a.create)
	v1.GET("/agents/", a.search)
	v1.GET("/agents/:id", agentAdminOrSelf, byID(s.Agents.Get))
	v1.PUT("/agents/:id", agentAdminOrSelf, agentFound, a.update)
	v1.DELETE("/agents/:id", adminOnly, actOnID(s.Agents.Delete))
	v1.GET("/agents/:id/events", agentAdminOrSelf, byID(s.Agents.Events))
	v1.POST("/agents/:id/events", agentAdminOrSelf, agentFound, wakeRollouts(s), a.reportEvent)
	var agentLabels, stackLabels *labeling.Service // nil in route-only tests
	if s.AgentLabels != nil {
		agentLabels = s.AgentLabels.Service
	}
	if s.StackLabels != nil {
		stackLabels = s.StackLabels.Service
	}
	al := labelHandlers{svc: agentLabels, ownerField: "agent_id"}
	v1.GET("/agents/:id/labels", agentAdminOrSelf, al.list)
	v1.POST("/agents/:id/labels", adminOnly, agentFound, al.add)
	v1.DELETE("/agents/:id/labels/:label", adminOnly, actOnIDAnd("label", agentLabels.RemoveLabel))
	v1.GET("/agents/:id/annotations", agentAdminOrSelf, al.annotations)
	v1.POST("/agents/:id/annotations", adminOnly, agentFound, al.addAnnotation)
	v1.DELETE("/agents/:id/annotations/:key", adminOnly, actOnIDAnd("key", agentLabels.RemoveAnnotation))
	v1.GET("/agents/:id/targets", agentAdminOrSelf, byID(s.Agents.Targets))
	v1.POST("/agents/:id/targets", adminOnly, agentFound, a.addTarget)
	v1.DELETE("/agents/:id/targets/:stack_id", adminOnly, a.removeTarget)
	v1.GET("/agents/:id/target-state", agentAdminOrSelf, a.targetState)
	v1.GET("/agents/:id/stacks", agentAdminOrSelf, byID(s.Agents.Stacks))
	v1.POST("/agents/:id/heartbeat", agentSelf, byID(s.Agents.Heartbeat))
	v1.POST("/agents/:id/rotate-pak", agentAdminOrSelf, a.rotate)
	v1.GET("/agent-events", a.allEvents)
	v1.GET("/agent-events/:id", byID(s.Agents.GetEvent))

	g := generatorHandlers{svc: s.Generators}
	v1.GET("/generators", generatorAdminOnly, byPrincipal(s.Generators.List))
	v1.POST("/generators", generatorAdminOnly, g.create)
	v1.GET("/generators/:id", generatorOrAdmin, byID(s.Generators.Get))
	v1.PUT("/generators/:id", generatorOrAdmin, generatorFound, g.update)
	v1.DELETE("/generators/:id", generatorOrAdmin, actOnID(s.Generators.Delete))
	v1.POST("/generators/:id/rotate-pak", generatorOrAdmin, g.rotate)

	rg := registrationHandlers{svc: s.Registrations}
	// Role, then the generator, before the (optional) body is read.
	registrationTarget := guardLoad(func(ctx context.Context, p identity.Principal, id uuid.UUID) error {
		return s.Registrations.CheckChange(ctx, p, id)
	})
	v1.POST("/generators/:id/register", registrationChanger, registrationTarget, rg.register)
	v1.DELETE("/generators/:id/register", registrationChanger, registrationTarget, rg.deregister)
	v1.GET("/generators/:id/registered-agents", registeredAgentsReader, byID(s.Registrations.ForGenerator))
	v1.GET("/agents/:id/registrations", registrationsReader, byID(s.Registrations.ForAgent))

	st := stackHandlers{svc: s.Stacks}
	v1.GET("/stacks", st.list)
	v1.POST("/stacks", adminOrGenerator, st.create)
	v1.GET("/stacks/:id", byID(s.Stacks.Get))
	v1.PUT("/stacks/:id", adminOrGenerator, stackOwned, st.update)
	v1.DELETE("/stacks/:id", actOnID(s.Stacks.Delete))
	sl := labelHandlers{svc: stackLabels, ownerField: "stack_id", annotationMismatch: "Stack ID mismatch"}
	v1.GET("/stacks/:id/labels", sl.list)
	v1.POST("/stacks/:id/labels", adminOrGenerator, stackOwned, sl.add)
	v1.DELETE("/stacks/:id/labels/:label", actOnIDAnd("label", stackLabels.RemoveLabel))
	v1.GET("/stacks/:id/annotations", sl.annotations)
	v1.POST("/stacks/:id/annotations", adminOrGenerator, stackOwned, sl.addAnnotation)
	v1.DELETE("/stacks/:id/annotations/:key", actOnIDAnd("key", stackLabels.RemoveAnnotation))
	v1.GET("/stacks/:id/deployment-objects", byID(s.Stacks.DeploymentObjects))
	v1.POST("/stacks/:id/deployment-objects", adminOrGenerator, stackOwned, st.createDeploymentObject)
	v1.GET("/deployment-objects/:id", byID(s.Stacks.GetDeploymentObject))

	hd := healthHandlers{health: s.Health, diagnostics: s.Diagnostics}
	v1.PATCH("/agents/:id/health-status", agentAdminOrSelf, agentFound, wakeRollouts(s), hd.report)
	v1.GET("/deployment-objects/:id/health", adminOnly, byID(s.Health.ObjectHealth))
	v1.GET("/stacks/:id/health", adminOnly, byID(s.Health.StackHealth))
	v1.POST("/deployment-objects/:id/diagnostics", adminOnly, objectFound, hd.requestDiagnostics)
	v1.GET("/agents/:id/diagnostics/pending", agentAdminOrSelf, agentFound, byID(s.Diagnostics.Pending))
	v1.GET("/diagnostics/:id", byID(s.Diagnostics.Get))
	v1.POST("/diagnostics/:id/claim", byID(s.Diagnostics.Claim))
	v1.POST("/diagnostics/:id/result", diagnosticOwner, hd.submitDiagnostic)

	tp := templateHandlers{svc: s.Templates}
	v1.GET("/templates", templateRole, byPrincipal(s.Templates.List))
	v1.POST("/templates", templateRole, tp.create)
	v1.GET("/templates/:id", templateRole, byID(s.Templates.Get))
	v1.PUT("/templates/:id", templateRole, templateOwned, tp.update)
	v1.DELETE("/templates/:id", templateRole, actOnID(s.Templates.Delete))
	v1.GET("/templates/:id/versions", templateRole, byID(s.Templates.Versions))
	v1.GET("/templates/:id/labels", templateRole, byID(s.Templates.Labels))
	v1.POST("/templates/:id/labels", templateRole, templateOwned, tp.addLabel)
	v1.DELETE("/templates/:id/labels/:label", templateRole, actOnIDAnd("label", s.Templates.RemoveLabel))
	v1.GET("/templates/:id/annotations", templateRole, byID(s.Templates.Annotations))
	v1.POST("/templates/:id/annotations", templateRole, templateOwned, tp.addAnnotation)
	v1.DELETE("/templates/:id/annotations/:key", templateRole, actOnIDAnd("key", s.Templates.RemoveAnnotation))
	v1.POST("/stacks/:id/deployment-objects/from-template", adminOrGenerator, stackOwned, tp.instantiate)

	registerWorkOrders(v1, s)
	registerWebhooks(v1, s)
	registerRollouts(v1, s)

	fl := fleetHandlers{svc: s.Fleet, live: s.FleetLive}
	fleetAdmin := guard(fleet.AdminOnly)
	v1.GET("/fleet", fleetAdmin, fl.list)
	v1.GET("/agents/:id/fleet-status", fleetAdmin, fl.status)
	v1.GET("/admin/ws/connections", fleetAdmin, fl.connections)
	v1.GET("/fleet/live", fleetAdmin, fleetLiveHandlers{live: s.FleetLive}.stream)

	tl := telemetryHandlers{svc: s.Telemetry, hub: s.TelemetryLive}
	v1.POST("/agents/:id/telemetry", guardID(telemetry.AgentOnly), tl.ingest)
	v1.GET("/stacks/:id/logs", adminOrGenerator, history(s.Telemetry.Logs))
	v1.GET("/stacks/:id/events", adminOrGenerator, history(s.Telemetry.Events))
	v1.GET("/stacks/:id/live", adminOrGenerator, tl.live)

	ad := adminHandlers{audit: s.AuditLog, reload: s.ConfigReload}
	v1.GET("/admin/audit-logs", adminOnly, ad.auditLogs)
	v1.POST("/admin/config/reload", adminOnly, ad.reloadConfig)
}
