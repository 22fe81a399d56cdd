package postgres

import (
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
)

// These assemble a use case's ports from the repositories over one Store,
// for tests and tools that build use cases by hand; the services get the
// same assembly from Wire (services/*/cmd/*/wire.go).

// StackRepos returns the stack use cases' ports over s.
func StackRepos(s *Store) stacks.Repos {
	d := NewDependencies(s)
	return stacks.Repos{Tx: s, Journal: s, Stacks: NewStacks(s), Objects: NewDeploymentObjects(s),
		Generators: NewGenerators(s), Dependencies: d, Withheld: d}
}

// TemplateRepos returns the template use cases' ports over s.
func TemplateRepos(s *Store) templates.Repos {
	t := NewTemplates(s)
	return templates.Repos{Tx: s, Journal: s, Templates: t, Labels: t, StackLabels: NewStackLabels(s), Provenance: t}
}

// WorkOrderRepos returns the work-order use cases' ports over s.
func WorkOrderRepos(s *Store) workorders.Repos {
	w := NewWorkOrders(s)
	return workorders.Repos{Tx: s, Journal: s, Orders: w, Claims: w, Log: w, Agents: w, Retries: w}
}

// ScheduleRepos returns the schedule use cases' ports over s.
func ScheduleRepos(s *Store) workorders.ScheduleRepos {
	sc := NewSchedules(s)
	return workorders.ScheduleRepos{Tx: s, Journal: s, Schedules: sc, Runs: sc}
}

// HousekeepingRepos returns housekeeping's ports over s.
func HousekeepingRepos(s *Store) housekeeping.Repos {
	return housekeeping.Repos{Diagnostics: NewHousekeeping(s), Audit: NewHousekeeping(s), Idempotency: s, Telemetry: NewTelemetry(s)}
}

// RolloutRepos returns the rollout use cases' ports over s.
func RolloutRepos(s *Store) rollouts.Repos {
	return rollouts.Repos{Tx: s, Journal: s, Policies: NewRolloutPolicies(s), Rollouts: NewRollouts(s)}
}
