package httpapi_test

import (
	"context"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/templatingclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/app/rendering"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/templating/internal/httpapi"
)

// The tutorial's web-service template and schema.
const (
	webService = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {{ namespace }}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ service_name }}\n  namespace: {{ namespace }}\n  labels:\n    app: {{ service_name }}\n    managed-by: brokkr\nspec:\n  replicas: {{ replicas }}\n  selector:\n    matchLabels:\n      app: {{ service_name }}\n  template:\n    metadata:\n      labels:\n        app: {{ service_name }}\n    spec:\n      containers:\n      - name: {{ service_name }}\n        image: {{ image_repository }}:{{ image_tag }}\n        ports:\n        - containerPort: {{ container_port }}\n        resources:\n          requests:\n            cpu: {{ cpu_request }}\n            memory: {{ memory_request }}\n          limits:\n            cpu: {{ cpu_limit }}\n            memory: {{ memory_limit }}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {{ service_name }}\n  namespace: {{ namespace }}\nspec:\n  selector:\n    app: {{ service_name }}\n  ports:\n  - port: 80\n    targetPort: {{ container_port }}"
	webSchema  = `{"type": "object", "required": ["service_name", "namespace", "image_repository", "image_tag"], "properties": {"service_name": {"type": "string", "minLength": 1, "maxLength": 63}, "namespace": {"type": "string", "minLength": 1}, "image_repository": {"type": "string"}, "image_tag": {"type": "string", "default": "latest"}, "replicas": {"type": "integer", "default": 2, "minimum": 1, "maximum": 20}, "container_port": {"type": "integer", "default": 8080}, "cpu_request": {"type": "string", "default": "100m"}, "memory_request": {"type": "string", "default": "128Mi"}, "cpu_limit": {"type": "string", "default": "500m"}, "memory_limit": {"type": "string", "default": "256Mi"}}}`
)

func params() map[string]any {
	return map[string]any{"service_name": "frontend", "namespace": "frontend-app",
		"image_repository": "myregistry.example.com/frontend", "image_tag": "v2.1.0", "replicas": 3,
		"container_port": 3000, "memory_limit": "512Mi"}
}

type renderer interface {
	Render(ctx context.Context, source, schema string, params map[string]any) (string, error)
}

func benchRender(b *testing.B, r renderer) {
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			start := time.Now()
			out, err := r.Render(context.Background(), webService, webSchema, params())
			local = append(local, time.Since(start))
			if err != nil || len(out) < 500 {
				b.Errorf("render: %v (%d bytes)", err, len(out))
				return
			}
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "renders/s")
}

// BenchmarkRenderWebService renders the tutorial's web-service template
// in-process (the use case) and through the templating service over HTTP,
// in the same run.
func BenchmarkRenderWebService(b *testing.B) {
	svc := rendering.NewService(gonja.New(template.DefaultLimits()), jsonschema.New())
	b.Run("in-process", func(b *testing.B) { benchRender(b, svc) })
	b.Run("via-service", func(b *testing.B) {
		gin.SetMode(gin.ReleaseMode)
		reg := httpserver.NewRegistry()
		m, err := httpapi.NewMetrics(reg)
		if err != nil {
			b.Fatal(err)
		}
		e := httpserver.New(httpserver.Options{Service: "bench", Registry: reg})
		httpapi.Register(e, svc, m)
		srv := httptest.NewServer(e)
		defer srv.Close()
		benchRender(b, templatingclient.New(srv.URL, 5*time.Second))
	})
}
