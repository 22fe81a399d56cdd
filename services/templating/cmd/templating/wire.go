//go:build wireinject

package main

import (
	"log/slog"
	"net/http"

	"github.com/google/wire"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func buildServer(cfg config.Settings, log *slog.Logger) (*http.Server, error) {
	wire.Build(
		provideEngine, provideSchemas, provideRegistry, provideRouter, provideServer,
		rendering.NewService,
		wire.Bind(new(template.Engine), new(*gonja.Engine)),
		wire.Bind(new(template.SchemaValidator), new(*jsonschema.Validator)),
	)
	return nil, nil
}
