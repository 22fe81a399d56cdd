//go:build wireinject

package main

import (
	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
)

// stackRepos binds the ports of the stack (dependencies included: also
// the agents' and deployment health's wake-ups), template, target-state and
// work-order use cases to their PostgreSQL repositories. The ports still
// served by the shared Store (transactions, stack labels, the generator
// check) are bound in wire.go, where the Store's provider is. The
// work-order and schedule ports come assembled from postgres.WorkOrderRepos
// and postgres.ScheduleRepos, as work-order-scheduler gets them, so both
// services bind them the same way.
var stackRepos = wire.NewSet(
	postgres.NewStacks, postgres.NewDeploymentObjects, postgres.NewTargetStates, postgres.NewTemplates,
	postgres.NewDependencies, postgres.WorkOrderRepos, postgres.ScheduleRepos,
	wire.Struct(new(stacks.Repos), "*"),
	wire.Bind(new(stacks.DependencyRepository), new(*postgres.Dependencies)),
	wire.Bind(new(stacks.WithheldReader), new(*postgres.Dependencies)),
	wire.Bind(new(agents.DependencyWatch), new(*postgres.Dependencies)),
	wire.Bind(new(deploymenthealth.DependencyWatch), new(*postgres.Dependencies)),
	wire.Bind(new(stacks.StackRepository), new(*postgres.Stacks)),
	wire.Bind(new(stacks.DeploymentObjectRepository), new(*postgres.DeploymentObjects)),
	wire.Bind(new(generators.StackLister), new(*postgres.Stacks)),
	wire.Bind(new(targetstate.SnapshotReader), new(*postgres.TargetStates)),
	wire.Struct(new(templates.Repos), "*"),
	wire.Bind(new(templates.TemplateRepository), new(*postgres.Templates)),
	wire.Bind(new(templates.TemplateLabelRepository), new(*postgres.Templates)),
	wire.Bind(new(templates.ProvenanceRecorder), new(*postgres.Templates)),
)
