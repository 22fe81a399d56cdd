// Package httpapi is the templating service's internal HTTP API:
// validate-template, validate-schema and render. Only api calls it.
package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/templatingclient"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// Metrics are the service's own series.
type Metrics struct {
	renders  *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewMetrics registers brokkr_templating_* on reg (or reuses them).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	f := httpserver.NewFamilies(reg)
	m := &Metrics{
		renders: f.CounterVec("brokkr_templating_renders_total",
			"Template renders by result: ok, or the failure reason (params, syntax, render, limit).", "result"),
		duration: f.Histogram("brokkr_templating_render_duration_seconds",
			"Time to validate parameters and render one template.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}),
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Register mounts the internal API on r.
func Register(r gin.IRouter, svc *rendering.Service, m *Metrics) {
	r.POST(templatingclient.ValidateTemplatePath, func(c *gin.Context) {
		var in templatingclient.ValidateTemplateRequest
		if httpserver.BindJSON(c, &in) != nil {
			return
		}
		answer(c, http.StatusNoContent, nil, svc.ValidateTemplate(c.Request.Context(), in.Source))
	})
	r.POST(templatingclient.ValidateSchemaPath, func(c *gin.Context) {
		var in templatingclient.ValidateSchemaRequest
		if httpserver.BindJSON(c, &in) != nil {
			return
		}
		answer(c, http.StatusNoContent, nil, svc.ValidateSchema(c.Request.Context(), in.Schema))
	})
	r.POST(templatingclient.RenderPath, func(c *gin.Context) {
		var in templatingclient.RenderRequest
		if httpserver.BindJSON(c, &in) != nil {
			return
		}
		start := time.Now()
		out, err := svc.Render(c.Request.Context(), in.Template, in.Schema, in.Params)
		m.duration.Observe(time.Since(start).Seconds())
		m.renders.WithLabelValues(reason(err)).Inc()
		answer(c, http.StatusOK, templatingclient.RenderResponse{YAML: out}, err)
	})
}

// reason classifies a render outcome for the metrics.
func reason(err error) string {
	var (
		syn *template.SyntaxError
		lim *template.LimitError
		de  *domain.Error
	)
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &lim):
		return "limit"
	case errors.As(err, &syn):
		return "syntax"
	case errors.As(err, &de) && de.Fields["validation_errors"] != nil:
		return "params"
	}
	return "render"
}

func answer(c *gin.Context, status int, body any, err error) {
	if err == nil {
		if body == nil {
			c.Status(status)
			return
		}
		c.JSON(status, body)
		return
	}
	// The table maps ErrInvalid to 400 and ErrUnprocessable to 422; a
	// validation failure's "validation_errors" field travels as the
	// domain error's field (templatingclient.ErrorResponse).
	httpserver.Fail(c, err)
}
