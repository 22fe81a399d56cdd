// Package telemetry sets up OpenTelemetry tracing the way the original
// does (OTLP over gRPC, batch export, ratio sampling) and gives outgoing
// HTTP clients the propagation that ties our services' spans together.
package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/brokkr-go/brokkr/pkg/platform/config"
)

// Setup installs the W3C TraceContext + Baggage propagator (always, so an
// incoming trace is carried on even when this service does not export) and,
// when cfg.Enabled, a global tracer provider exporting to cfg.OTLPEndpoint.
//
// service becomes the resource's service.name (our services are separate
// processes and must be told apart); cfg.ServiceName, the original's single
// name, becomes service.namespace so every Brokkr service groups under it.
// An empty service falls back to cfg.ServiceName.
//
// The returned shutdown flushes pending spans; call it after the servers
// have drained. It is never nil.
func Setup(ctx context.Context, cfg config.Telemetry, service string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	noop := func(context.Context) error { return nil }
	if !cfg.Enabled {
		return noop, nil
	}
	if service == "" {
		service = cfg.ServiceName
	}
	// WithEndpointURL reads the scheme: http:// means plaintext, as in the
	// original's default http://localhost:4317. The gRPC connection is made
	// lazily, so a collector that is down does not stop the service.
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
	if err != nil {
		return noop, fmt.Errorf("telemetry: OTLP exporter for %s: %w", cfg.OTLPEndpoint, err)
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", service),
		attribute.String("service.namespace", cfg.ServiceName),
		attribute.String("service.version", version()),
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attrs...))
	if err != nil {
		return noop, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(Sampler(cfg.SamplingRate)),
		sdktrace.WithResource(res),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Sampler is the original's choice (AlwaysOn at ≥1, AlwaysOff at ≤0,
// otherwise a trace-id ratio) behind ParentBased, so a sampled caller's
// trace stays whole across our services.
func Sampler(rate float64) sdktrace.Sampler {
	var root sdktrace.Sampler
	switch {
	case rate >= 1:
		root = sdktrace.AlwaysSample()
	case rate <= 0 || rate != rate: // NaN samples nothing
		root = sdktrace.NeverSample()
	default:
		root = sdktrace.TraceIDRatioBased(rate)
	}
	return sdktrace.ParentBased(root)
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "0.0.0"
}

// Transport wraps base (http.DefaultTransport when nil) so every outgoing
// request gets a client span and the traceparent/baggage headers.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return otelhttp.NewTransport(base)
}

// HTTPClient is an *http.Client using Transport(base). A client without a
// timeout can hang a caller forever, so timeout 0 means 30 s; callers that
// need longer (long-polls) pass their own.
func HTTPClient(base http.RoundTripper, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &http.Client{Transport: Transport(base), Timeout: timeout}
}
