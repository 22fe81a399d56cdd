//go:build wireinject

// Regenerate wire_gen.go after changing the providers, in this directory's
// module (services/webhook-dispatch):
//
//	go run github.com/google/wire/cmd/wire ./cmd/webhook-dispatch

package main

import (
	"context"
	"log/slog"

	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func buildApp(ctx context.Context, cfg config.Settings, live *config.Store, log *slog.Logger) (*app, func(), error) {
	wire.Build(
		postgres.OpenConfigured, provideRedis, provideConn, provideCipher, provideSender, provideRegistry, provideService,
		provideEngine, provideApp,
		postgres.NewStore,
	)
	return nil, nil, nil
}
