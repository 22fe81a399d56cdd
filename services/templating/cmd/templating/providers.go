package main

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/templating/internal/httpapi"
)

func provideEngine(cfg config.Settings) *gonja.Engine {
	limits := template.DefaultLimits()
	limits.Timeout = time.Duration(cfg.Templating.RenderTimeoutMillis) * time.Millisecond
	limits.MaxOutputBytes = cfg.Templating.MaxOutputBytes
	return gonja.New(limits)
}

func provideSchemas() *jsonschema.Validator { return jsonschema.New() }

func provideRegistry() *prometheus.Registry { return httpserver.NewRegistry() }

func provideRouter(cfg config.Settings, log *slog.Logger, reg *prometheus.Registry, svc *rendering.Service) (*gin.Engine, error) {
	metrics, err := httpapi.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	// Stateless: ready as soon as it listens.
	e := httpserver.NewOps("brokkr-templating", cfg, log, reg)
	httpapi.Register(e, svc, metrics)
	return e, nil
}

func provideServer(cfg config.Settings, e *gin.Engine) *http.Server {
	return httpserver.NewServer(cfg.Templating.Addr, e)
}
