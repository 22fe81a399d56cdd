//go:build wireinject

// Regenerate wire_gen.go after changing the providers, in this directory:
//
//	go run github.com/google/wire/cmd/wire@v0.7.0

package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

var common = wire.NewSet(
	postgres.OpenConfigured, redisadapter.NewConfiguredClient, provideIssuer, provideInvalidation, provideAdmin,
	postgres.NewStore, postgres.NewPAKs,
)

// buildServer assembles `auth serve`. out receives the one-time admin PAK.
func buildServer(ctx context.Context, cfg config.Settings, log *slog.Logger, out io.Writer) (*server, func(), error) {
	wire.Build(
		common,
		provideMigrations, provideFailureCounter, provideVerifier,
		provideRegistry, provideEngine, provideServer,
	)
	return nil, nil, nil
}

// buildCLI assembles the create/rotate subcommands on the api's use cases.
func buildCLI(ctx context.Context, cfg config.Settings, log *slog.Logger, out io.Writer) (*cli, func(), error) {
	wire.Build(
		common,
		provideChanges, provideCLI,
		agents.NewService, generators.NewService,
		postgres.NewAgents, postgres.NewAgentEvents, postgres.NewGenerators, postgres.NewStacks, postgres.NewDeploymentObjects, postgres.NewDependencies,
		wire.Struct(new(agents.Repos), "*"), wire.Struct(new(generators.Repos), "*"),
		wire.Bind(new(journal.Transactor), new(*postgres.Store)),
		wire.Bind(new(journal.Recorder), new(*postgres.Store)),
		wire.Bind(new(agents.AgentRepository), new(*postgres.Agents)),
		wire.Bind(new(agents.TargetRepository), new(*postgres.Agents)),
		wire.Bind(new(agents.EventRepository), new(*postgres.AgentEvents)),
		wire.Bind(new(agents.ObjectReader), new(*postgres.DeploymentObjects)),
		wire.Bind(new(agents.DependencyWatch), new(*postgres.Dependencies)),
		postgres.NewRegistrations,
		wire.Bind(new(agents.Registrar), new(*postgres.Registrations)),
		wire.Bind(new(agents.GeneratorChecker), new(*postgres.Generators)),
		wire.Bind(new(generators.GeneratorRepository), new(*postgres.Generators)),
		wire.Bind(new(generators.StackLister), new(*postgres.Stacks)),
		wire.Bind(new(authn.PAKIssuer), new(*paks.RecordingIssuer)),
		wire.Bind(new(authn.Invalidator), new(*redisadapter.AuthInvalidation)),
		wire.Bind(new(agents.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(generators.ChangeNotifier), new(*redisadapter.Changes)),
	)
	return nil, nil, nil
}
