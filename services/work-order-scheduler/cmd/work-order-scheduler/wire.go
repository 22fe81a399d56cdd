//go:build wireinject

// Regenerate wire_gen.go after changing the providers, in this directory's
// module (services/work-order-scheduler):
//
//	go run github.com/google/wire/cmd/wire ./cmd/work-order-scheduler

package main

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func buildApp(ctx context.Context, cfg config.Settings, live *config.Store, log *slog.Logger) (*app, func(), error) {
	wire.Build(
		postgres.OpenConfigured, provideConn, provideQueue, provideEnqueuer, provideClock, provideHousekeeping,
		provideRegistry, provideMetrics, provideChanges, provideRollouts, provideScheduler, provideEngine, provideApp,
		provideStore,
		workorders.NewService, workorders.NewSchedules,
		postgres.WorkOrderRepos, postgres.ScheduleRepos,
		wire.Bind(new(workorders.RetryTimer), new(*asynqadapter.Enqueuer)),
	)
	return nil, nil, nil
}
