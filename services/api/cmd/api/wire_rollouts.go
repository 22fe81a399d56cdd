//go:build wireinject

package main

import (
	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
)

// rolloutSet assembles the rollout use cases (policy, status, control,
// rollback) over PostgreSQL; advancing runs in the work-order-scheduler.
// The bindings to the stack use cases and the change hub are in wire.go,
// where their providers are.
var rolloutSet = wire.NewSet(
	postgres.NewRolloutPolicies, postgres.NewRollouts, rollouts.NewService, rollouts.NewWakeups,
	wire.Struct(new(rollouts.Repos), "*"),
	wire.Bind(new(rollouts.AgentWaiters), new(*postgres.Rollouts)),
	wire.Bind(new(rollouts.PolicyRepository), new(*postgres.RolloutPolicies)),
	wire.Bind(new(rollouts.RolloutRepository), new(*postgres.Rollouts)),
)
