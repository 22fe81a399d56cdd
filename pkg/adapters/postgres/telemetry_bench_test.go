package postgres_test

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/housekeeping"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry"
	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	domaintelemetry "github.com/brokkr-go/brokkr/pkg/domain/telemetry"
)

// BenchmarkTelemetryFlood floods one stack through the ingest use case
// with full batches (500 lines of 200 bytes) on PostgreSQL, running the
// housekeeping sweep with a 100 000-row cap after every 50 batches, as the
// work-order-scheduler would between ticks. It reports lines per second,
// the stack's rows at the end (bounded by the cap plus what arrives
// between sweeps) and the heap in use (docs/benchmarks.md#telemetry-flood).
func BenchmarkTelemetryFlood(b *testing.B) {
	ctx := context.Background()
	s := postgres.NewStore(pgtest.New(b))
	repo := postgres.NewTelemetry(s)
	var agentID, stackID uuid.UUID
	if err := s.DB().GetContext(ctx, &agentID, `INSERT INTO agents (name, cluster_name) VALUES ('flood', 'c') RETURNING id`); err != nil {
		b.Fatal(err)
	}
	if err := s.DB().GetContext(ctx, &stackID, `INSERT INTO stacks (name) VALUES ('flood') RETURNING id`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO agent_targets (agent_id, stack_id) VALUES ($1, $2)`, agentID, stackID); err != nil {
		b.Fatal(err)
	}
	svc := telemetry.NewService(repo, telemetrytest.AnyStack{}, nil, telemetry.Options{})
	house := housekeeping.NewService(housekeeping.Repos{Telemetry: repo}, func() housekeeping.Retention {
		return housekeeping.Retention{Telemetry: telemetry.RetentionCeiling, TelemetryRowCap: 100000}
	})
	line := strings.Repeat("x", 200)
	batch := make([]telemetry.Frame, domaintelemetry.MaxFrames)
	for i := range batch {
		body, _ := json.Marshal(domaintelemetry.PodLogLine{StackID: stackID, Namespace: "default", Pod: "flood-0",
			Container: "app", TS: time.Now().UTC(), Line: line})
		batch[i] = telemetry.Frame{Type: domaintelemetry.TypePodLogLine, Body: body}
	}
	p := identity.Principal{Role: identity.RoleAgent, ID: agentID}
	var peak uint64
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := svc.Ingest(ctx, p, agentID, batch); err != nil {
			b.Fatal(err)
		}
		if i%50 == 49 {
			if _, err := house.SweepTelemetry(ctx); err != nil {
				b.Fatal(err)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var rows int
	if err := s.DB().GetContext(ctx, &rows, `SELECT count(*) FROM stack_pod_logs WHERE stack_id = $1`, stackID); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*domaintelemetry.MaxFrames)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(rows), "rows-at-end")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
