//go:build wireinject

package main

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/aesgcm"
	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/templatingclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/webhookhttp"
	"github.com/brokkr-go/brokkr/pkg/app/agents"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/configreload"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/app/generators"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/app/registrations"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/templates"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

func buildApp(ctx context.Context, cfg config.Settings, store *config.Store, log *slog.Logger) (*app, func(), error) {
	wire.Build(
		provideDB, redisadapter.NewConfiguredClient, provideIndex, provideChanges, provideAuthClient, provideAuthCache, provideAuthInvalidation,
		provideRegistry, provideEngine, provideServer,
		provideStore, stackRepos, rolloutSet,
		postgres.NewAgents, postgres.NewAgentEvents, postgres.NewGenerators, postgres.NewAgentLabels, postgres.NewStackLabels,
		wire.Struct(new(agents.Repos), "*"), wire.Struct(new(generators.Repos), "*"),
		postgres.NewRegistrations, wire.Struct(new(registrations.Repos), "*"), registrations.NewService,
		wire.Bind(new(registrations.Repository), new(*postgres.Registrations)),
		wire.Bind(new(registrations.GeneratorReader), new(*postgres.Generators)),
		wire.Bind(new(registrations.AgentReader), new(*postgres.Agents)),
		wire.Bind(new(registrations.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(agents.AgentRepository), new(*postgres.Agents)),
		wire.Bind(new(agents.TargetRepository), new(*postgres.Agents)),
		wire.Bind(new(agents.EventRepository), new(*postgres.AgentEvents)),
		wire.Bind(new(agents.ObjectReader), new(*postgres.DeploymentObjects)),
		wire.Bind(new(agents.Registrar), new(*postgres.Registrations)),
		wire.Bind(new(agents.GeneratorChecker), new(*postgres.Generators)),
		wire.Bind(new(agents.LabelRepository), new(*postgres.AgentLabels)),
		wire.Bind(new(generators.GeneratorRepository), new(*postgres.Generators)),
		wire.Bind(new(stacks.LabelRepository), new(*postgres.StackLabels)),
		agents.NewService, agents.NewLabels, generators.NewService, stacks.NewService, stacks.NewLabels, targetstate.NewService,
		auditlog.NewService, configreload.NewService, templates.NewService, provideTemplatingClient,
		wire.Bind(new(auditlog.Store), new(*postgres.AuditLog)),
		wire.Bind(new(templates.Renderer), new(*templatingclient.Client)),
		wire.Bind(new(templates.Deployer), new(*stacks.Service)),
		wire.Bind(new(journal.Recorder), new(*postgres.Store)),
		wire.Bind(new(journal.Transactor), new(*postgres.Store)),
		wire.Bind(new(stacks.GeneratorChecker), new(*postgres.Generators)),
		wire.Bind(new(templates.StackLabelReader), new(*postgres.StackLabels)),
		postgres.NewAuditLog, postgres.NewDeploymentHealth, postgres.NewDiagnostics, postgres.NewExistence,
		postgres.NewSubscriptions, postgres.NewDeliveries, postgres.NewIdempotencyKeys, postgres.NewOverview,
		wire.Bind(new(authn.PAKIssuer), new(*authclient.Client)),
		wire.Bind(new(authn.Invalidator), new(*redisadapter.AuthInvalidation)),
		wire.Bind(new(configreload.CacheFlusher), new(*redisadapter.AuthInvalidation)),
		wire.Bind(new(agents.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(generators.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(stacks.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(deploymenthealth.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(rollouts.ChangeNotifier), new(*redisadapter.Changes)),
		wire.Bind(new(rollouts.Stacks), new(*stacks.Service)),
		wire.Bind(new(rollouts.Waker), new(*asynqadapter.Enqueuer)),
		wire.Bind(new(configreload.Reloader), new(*config.Store)),
		wire.Bind(new(authn.Authenticator), new(*authn.Cache)),
		workorders.NewService, workorders.NewSchedules, provideRetryTimer,
		deploymenthealth.NewService, diagnostics.NewService,
		wire.Struct(new(deploymenthealth.Repos), "*"), wire.Struct(new(diagnostics.Repos), "*"),
		wire.Bind(new(deploymenthealth.RecordRepository), new(*postgres.DeploymentHealth)),
		wire.Bind(new(deploymenthealth.References), new(*postgres.Existence)),
		wire.Bind(new(deploymenthealth.ReportPermission), new(*postgres.AgentEvents)),
		wire.Bind(new(diagnostics.RequestRepository), new(*postgres.Diagnostics)),
		wire.Bind(new(diagnostics.References), new(*postgres.Existence)),
		wire.Bind(new(diagnostics.LiveNotes), new(*redisadapter.Changes)),
		wire.Bind(new(webhooks.LiveNotes), new(*redisadapter.Changes)),
		wire.Bind(new(workorders.RetryTimer), new(*asynqadapter.Enqueuer)),
		wire.InterfaceValue(new(workorders.Clock), workorders.SystemClock{}),
		webhooks.NewService, provideWebhookCipher, provideWebhookSender,
		wire.Struct(new(webhooks.Repos), "*"),
		wire.Bind(new(webhooks.SubscriptionRepository), new(*postgres.Subscriptions)),
		wire.Bind(new(webhooks.DeliveryRepository), new(*postgres.Deliveries)),
		wire.Bind(new(webhooks.AgentDeliveryRepository), new(*postgres.Deliveries)),
		wire.Bind(new(webhooks.Cipher), new(*aesgcm.Cipher)),
		wire.Bind(new(webhooks.Sender), new(*webhookhttp.Sender)),
		idempotency.NewService,
		wire.Bind(new(idempotency.KeyRepository), new(*postgres.IdempotencyKeys)),
		wire.Bind(new(idempotency.Sealer), new(*aesgcm.Cipher)),
		wire.Struct(new(httpapi.Services), "*"),
		overview.NewService, provideConsoleSessions, provideConsoleHub, provideConsole,
		wire.Bind(new(overview.ReadModel), new(*postgres.Overview)),
		wire.Bind(new(overview.StackReader), new(*stacks.Service)),
		provideTelemetryFeed, provideTelemetry, provideTelemetryHub,
		paks.NewTenants, postgres.NewPAKs, wire.Bind(new(paks.TenantLister), new(*postgres.PAKs)),
		fleet.NewService, postgres.NewFleet, providePresence, provideFleetLive,
		wire.Bind(new(fleet.Repository), new(*postgres.Fleet)),
		wire.Bind(new(fleet.Presence), new(*redisadapter.Presence)),
	)
	return nil, nil, nil
}
