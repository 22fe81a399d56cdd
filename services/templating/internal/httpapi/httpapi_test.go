package httpapi_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/templatingclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/templating/internal/httpapi"
)

// client starts the service's routes on loopback and returns the api-side
// client for it, plus the metrics endpoint URL.
func client(t *testing.T, limits template.Limits) (*templatingclient.Client, string) {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	reg := httpserver.NewRegistry()
	m, err := httpapi.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.New(httpserver.Options{Service: "test", Registry: reg})
	httpserver.Mount(e, httpserver.Ops{Metrics: reg})
	httpapi.Register(e, rendering.NewService(gonja.New(limits), jsonschema.New()), m)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return templatingclient.New(srv.URL, 5*time.Second), srv.URL
}

func TestRenderThroughService(t *testing.T) {
	c, _ := client(t, template.DefaultLimits())
	out, err := c.Render(context.Background(), webService, webSchema, params())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"replicas: 3", "cpu: 100m", "memory: 512Mi", "image: myregistry.example.com/frontend:v2.1.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestServiceErrorsAreClientErrors(t *testing.T) {
	c, _ := client(t, template.DefaultLimits())
	ctx := context.Background()
	tests := []struct {
		name   string
		call   func() error
		msg    string
		fields bool
	}{
		{"unknown filter", func() error { return c.ValidateTemplate(ctx, "a: {{ b | nosuch }}") }, "Invalid Tera syntax: line 1", false},
		{"unclosed block", func() error { return c.ValidateTemplate(ctx, "{% if a %}x") }, "Invalid Tera syntax", false},
		{"schema not JSON", func() error { return c.ValidateSchema(ctx, "{nope") }, "Invalid JSON", false},
		{"schema invalid", func() error { return c.ValidateSchema(ctx, `{"type": 12}`) }, "Invalid JSON Schema", false},
		{"params invalid", func() error {
			p := params()
			p["replicas"] = 100
			_, err := c.Render(ctx, webService, webSchema, p)
			return err
		}, "Invalid parameters", true},
		{"undefined variable", func() error {
			_, err := c.Render(ctx, "a: {{ missing }}", `{"type": "object"}`, nil)
			return err
		}, "Template rendering failed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var de *domain.Error
			if !errors.As(err, &de) || !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("err = %v, want a 400-class domain error", err)
			}
			if !strings.HasPrefix(de.Msg, tt.msg) {
				t.Errorf("message %q, want prefix %q", de.Msg, tt.msg)
			}
			if v, ok := de.Fields["validation_errors"].([]string); tt.fields && (!ok || len(v) == 0 || !strings.HasPrefix(v[0], "/replicas")) {
				t.Errorf("validation_errors = %v", de.Fields["validation_errors"])
			}
		})
	}
}

// TestHostileTemplateIsBounded: a runaway template ends with a client error
// within the limit and the service keeps serving.
func TestHostileTemplateIsBounded(t *testing.T) {
	limits := template.DefaultLimits()
	limits.Timeout = 300 * time.Millisecond
	c, _ := client(t, limits)
	start := time.Now()
	_, err := c.Render(context.Background(), "{% for i in range(end=100000000) %}{{ i }}{% endfor %}", `{"type": "object"}`, nil)
	if !errors.Is(err, domain.ErrInvalid) {
		t.Fatalf("err = %v, want a 400", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("hostile template took %v", d)
	}
	if _, err := c.Render(context.Background(), webService, webSchema, params()); err != nil {
		t.Fatalf("service unusable after a hostile template: %v", err)
	}
}

func TestServiceDownIsUnavailable(t *testing.T) {
	c := templatingclient.New("http://127.0.0.1:1", time.Second)
	if err := c.ValidateTemplate(context.Background(), "a"); !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}
