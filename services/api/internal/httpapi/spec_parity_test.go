package httpapi_test

import (
	"sort"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
	"github.com/brokkr-go/brokkr/services/api/internal/apidocs"
	"github.com/brokkr-go/brokkr/services/api/internal/httpapi"
)

// TestRouterMatchesSpec: every route the api serves is in
// api-spec/openapi.yaml, and every route in the spec is served.
func TestRouterMatchesSpec(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	httpserver.Mount(e, httpserver.Ops{Metrics: httpserver.NewRegistry()})
	apidocs.Mount(e)
	httpapi.Register(e, httpapi.Services{})

	served := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Path == apidocs.UIAssetsRoute {
			continue // static assets of the Swagger UI, not API
		}
		served[r.Method+" "+r.Path] = true
	}
	routes, err := apidocs.Routes()
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]bool{}
	for _, r := range routes {
		spec[r.Method+" "+r.Path] = true
	}
	var missing, extra []string
	for k := range served {
		if !spec[k] {
			missing = append(missing, k)
		}
	}
	for k := range spec {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("served but not in api-spec/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("in api-spec/openapi.yaml but not served: %v", extra)
	}
	if len(served) < 50 {
		t.Fatalf("only %d routes served; the router did not register", len(served))
	}
}
