package main

import (
	"log/slog"

	asynqadapter "github.com/brokkr-go/brokkr/pkg/adapters/asynq"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
)

// provideRetryTimer enqueues the release of each scheduled work-order retry
// on this deployment's queue, for the work-order-scheduler to run.
func provideRetryTimer(cfg config.Settings, log *slog.Logger) (*asynqadapter.Enqueuer, func(), error) {
	opt, err := asynqadapter.ConnOpt(cfg.Redis)
	if err != nil {
		return nil, nil, lifecycle.WithCode(lifecycle.ExitConfig, err)
	}
	e := asynqadapter.NewEnqueuer(opt, asynqadapter.QueueName(cfg.Database.URL, cfg.Database.Schema), log)
	return e, func() { _ = e.Close() }, nil
}
