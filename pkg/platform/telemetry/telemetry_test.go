package telemetry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

func TestSampler(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("00000000000000000000000000000001") // low id: inside any positive ratio
	sampledParent := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	tests := []struct {
		name     string
		rate     float64
		ctx      context.Context
		want     sdktrace.SamplingDecision
		descPart string
	}{
		{"rate 1 always", 1, context.Background(), sdktrace.RecordAndSample, "AlwaysOnSampler"},
		{"rate above 1 always", 3, context.Background(), sdktrace.RecordAndSample, "AlwaysOnSampler"},
		{"rate 0 never", 0, context.Background(), sdktrace.Drop, "AlwaysOffSampler"},
		{"negative never", -1, context.Background(), sdktrace.Drop, "AlwaysOffSampler"},
		{"ratio", 0.1, context.Background(), sdktrace.RecordAndSample, "TraceIDRatioBased{0.1}"},
		{"sampled parent wins over rate 0", 0, sampledParent, sdktrace.RecordAndSample, "AlwaysOffSampler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Sampler(tt.rate)
			if !strings.HasPrefix(s.Description(), "ParentBased{") || !strings.Contains(s.Description(), tt.descPart) {
				t.Errorf("description %q, want ParentBased with %s", s.Description(), tt.descPart)
			}
			res := s.ShouldSample(sdktrace.SamplingParameters{ParentContext: tt.ctx, TraceID: traceID, Name: "x"})
			if res.Decision != tt.want {
				t.Errorf("decision %v, want %v", res.Decision, tt.want)
			}
		})
	}
}

func TestSetupDisabledInstallsPropagatorOnly(t *testing.T) {
	before := otel.GetTracerProvider()
	shutdown, err := Setup(context.Background(), config.Defaults().Telemetry, "api")
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	fields := strings.Join(otel.GetTextMapPropagator().Fields(), ",")
	if !strings.Contains(fields, "traceparent") || !strings.Contains(fields, "baggage") {
		t.Fatalf("propagator fields %q", fields)
	}
	if otel.GetTracerProvider() != before {
		t.Fatal("disabled telemetry replaced the tracer provider")
	}
}

// collector is a minimal OTLP trace receiver.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	services []string
	spans    []string
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				c.services = append(c.services, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				c.spans = append(c.spans, sp.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestSetupExportsToOTLPCollector(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go srv.Serve(ln)
	defer srv.Stop()

	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)

	cfg := config.Defaults().Telemetry
	cfg.Enabled = true
	cfg.OTLPEndpoint = "http://" + ln.Addr().String()
	cfg.SamplingRate = 1
	shutdown, err := Setup(context.Background(), cfg, "brokkr-api")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "probe-span")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.spans) != 1 || col.spans[0] != "probe-span" {
		t.Fatalf("collector got spans %v", col.spans)
	}
	if len(col.services) == 0 || col.services[0] != "brokkr-api" {
		t.Fatalf("collector got service.name %v", col.services)
	}
}

func TestHTTPClientPropagatesTraceContext(t *testing.T) {
	if _, err := Setup(context.Background(), config.Defaults().Telemetry, "api"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
	}))
	defer srv.Close()

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err := HTTPClient(nil, time.Second).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if tp := <-got; !strings.Contains(tp, traceID.String()) {
		t.Fatalf("traceparent %q does not carry trace %s", tp, traceID)
	}
	if c := HTTPClient(nil, 0); c.Timeout != 30*time.Second {
		t.Fatalf("default timeout %v", c.Timeout)
	}
}
