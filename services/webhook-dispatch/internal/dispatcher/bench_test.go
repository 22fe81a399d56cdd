package dispatcher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/event"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
)

// latencyReceiver records, per event id, when the body arrived.
type latencyReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	received map[uuid.UUID]time.Time
	n        atomic.Int64
}

func newLatencyReceiver(b *testing.B) *latencyReceiver {
	r := &latencyReceiver{received: map[uuid.UUID]time.Time{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		now := time.Now()
		var env struct {
			ID uuid.UUID `json:"id"`
		}
		_ = json.NewDecoder(req.Body).Decode(&env)
		r.mu.Lock()
		if _, dup := r.received[env.ID]; !dup {
			r.received[env.ID] = now
			r.n.Add(1)
		}
		r.mu.Unlock()
	}))
	b.Cleanup(r.Close)
	return r
}

func (r *latencyReceiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received = map[uuid.UUID]time.Time{}
	r.n.Store(0)
}

func report(b *testing.B, n int, elapsed time.Duration, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "deliveries/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkDeliver measures webhook-dispatch end to end on real
// PostgreSQL, Redis and HTTP: b.N events committed through the outbox (8
// committers) until each has reached a local receiver, with the
// deliveries per second and the latency from commit to receipt; and, in
// the same run, a bare net/http POST loop (20 senders, as many as the
// dispatcher's workers) to the same receiver as the ceiling.
func BenchmarkDeliver(b *testing.B) {
	rcv := newLatencyReceiver(b)
	body, _ := json.Marshal(event.New("stack.created", map[string]any{"stack_id": uuid.New(), "name": "bench"}))

	b.Run("dispatch", func(b *testing.B) {
		h := newHarness(b, harnessOptions{concurrency: 20, perHost: 20, poolSize: 40})
		h.subscribe(webhook.Subscription{EventTypes: []string{"stack.created"}}, rcv.URL+"/hook", "Bearer x", "sign")
		rcv.reset()
		committed := make([]map[uuid.UUID]time.Time, 8)
		b.ResetTimer()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range committed {
			committed[w] = map[uuid.UUID]time.Time{}
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					ev := event.New("stack.created", map[string]any{"stack_id": uuid.New(), "name": "bench"})
					if err := h.store.InTx(context.Background(), func(ctx context.Context) error { return h.store.Emit(ctx, ev) }); err != nil {
						b.Error(err)
						return
					}
					committed[w][ev.ID] = time.Now()
				}
			})
		}
		wg.Wait()
		deadline := time.Now().Add(5*time.Minute + time.Duration(b.N)*10*time.Millisecond)
		for rcv.n.Load() < int64(b.N) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d delivered", rcv.n.Load(), b.N)
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		rcv.mu.Lock()
		var lat []time.Duration
		for _, m := range committed {
			for id, at := range m {
				lat = append(lat, rcv.received[id].Sub(at))
			}
		}
		rcv.mu.Unlock()
		report(b, b.N, elapsed, lat)
	})

	// Unsaturated: one event every 5 ms (200/s), so the latency is the
	// pipeline's (signal, relay, queue, attempt), not a backlog's.
	b.Run("dispatch-paced-200/s", func(b *testing.B) {
		h := newHarness(b, harnessOptions{concurrency: 20, perHost: 20, poolSize: 40})
		h.subscribe(webhook.Subscription{EventTypes: []string{"stack.created"}}, rcv.URL+"/hook", "Bearer x", "sign")
		rcv.reset()
		committed := map[uuid.UUID]time.Time{}
		b.ResetTimer()
		start := time.Now()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for range b.N {
			<-tick.C
			ev := event.New("stack.created", map[string]any{"stack_id": uuid.New(), "name": "bench"})
			if err := h.store.InTx(context.Background(), func(ctx context.Context) error { return h.store.Emit(ctx, ev) }); err != nil {
				b.Fatal(err)
			}
			committed[ev.ID] = time.Now()
		}
		deadline := time.Now().Add(time.Minute)
		for rcv.n.Load() < int64(b.N) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d delivered", rcv.n.Load(), b.N)
			}
			time.Sleep(2 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		rcv.mu.Lock()
		var lat []time.Duration
		for id, at := range committed {
			lat = append(lat, rcv.received[id].Sub(at))
		}
		rcv.mu.Unlock()
		report(b, b.N, elapsed, lat)
	})

	b.Run("bare-net-http", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
		defer client.CloseIdleConnections()
		lats := make([][]time.Duration, 20)
		b.ResetTimer()
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range lats {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					t0 := time.Now()
					resp, err := client.Post(rcv.URL+"/bare", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					lats[w] = append(lats[w], time.Since(t0))
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		report(b, b.N, elapsed, slices.Concat(lats...))
	})
}
