package workorders

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/workorders/wotest"
)

// woBroker serves the work-order routes the runner calls: the pending
// list, claim (404 for orders in lost), progress (409 once revoked).
type woBroker struct {
	srv *httptest.Server

	mu       sync.Mutex
	pending  []workorder.WorkOrder
	lost     map[uuid.UUID]bool // claims answered 404 (another agent won)
	revoked  map[uuid.UUID]bool // progress answered 409
	claimed  []uuid.UUID
	progress map[uuid.UUID][]string
}

func newWOBroker(t *testing.T) *woBroker {
	b := &woBroker{lost: map[uuid.UUID]bool{}, revoked: map[uuid.UUID]bool{}, progress: map[uuid.UUID][]string{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *woBroker) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v1/"), "/")
	switch {
	case len(parts) == 4 && parts[0] == "agents" && parts[2] == "work-orders" && parts[3] == "pending":
		_ = json.NewEncoder(w).Encode(b.pending)
	case len(parts) == 3 && parts[0] == "work-orders":
		id, _ := uuid.Parse(parts[1])
		idx := -1
		for i, o := range b.pending {
			if o.ID == id {
				idx = i
			}
		}
		switch parts[2] {
		case "claim":
			if idx < 0 || b.lost[id] {
				http.Error(w, `{"error":"Work order not found or not claimable"}`, http.StatusNotFound)
				return
			}
			o := b.pending[idx]
			b.pending = append(b.pending[:idx], b.pending[idx+1:]...)
			o.Status = workorder.StatusClaimed
			b.claimed = append(b.claimed, id)
			_ = json.NewEncoder(w).Encode(o)
		case "progress":
			if b.revoked[id] {
				http.Error(w, `{"error":"Work order is not claimed by this agent"}`, http.StatusConflict)
				return
			}
			var body broker.WorkOrderProgress
			_ = json.NewDecoder(r.Body).Decode(&body)
			if body.Message != nil {
				b.progress[id] = append(b.progress[id], *body.Message)
			}
			_ = json.NewEncoder(w).Encode(workorder.WorkOrder{ID: id, Status: workorder.StatusClaimed})
		default:
			http.NotFound(w, r)
		}
	default:
		http.NotFound(w, r)
	}
}

func (b *woBroker) add(o workorder.WorkOrder) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(b.pending, o)
}

func (b *woBroker) set(m map[uuid.UUID]bool, id uuid.UUID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m[id] = true
}

func (b *woBroker) claims() []uuid.UUID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uuid.UUID(nil), b.claimed...)
}

func (b *woBroker) reports(id uuid.UUID) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.progress[id]...)
}

type runnerFixture struct {
	*fixture
	b     *woBroker
	ob    *outbox.Outbox
	state string
	opts  Options
}

func newRunnerFixture(t *testing.T, durable bool) *runnerFixture {
	f := &runnerFixture{fixture: newFixture(t), b: newWOBroker(t)}
	if durable {
		f.state = t.TempDir()
	}
	f.ob, _ = outbox.Open(outbox.Options{})
	f.opts = Options{PollInterval: 100 * time.Millisecond, CheckInterval: 100 * time.Millisecond,
		ProgressInterval: time.Second, Timeout: time.Minute, StateDir: f.state}
	return f
}

// run starts a runner; the returned function stops it and waits.
func (f *runnerFixture) run(t *testing.T) (stop func()) {
	t.Helper()
	bc, err := broker.New(f.b.srv.URL, secret.String("pak"), broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := agent.Env{AgentID: uuid.New(), Broker: bc, Kube: f.kube, Outbox: f.ob}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = New(env, f.opts).Run(ctx)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the runner did not stop")
		}
	}
	t.Cleanup(stop)
	return stop
}

// completions decodes the completions queued in the outbox, by order id.
func (f *runnerFixture) completions(t *testing.T) map[uuid.UUID]broker.WorkOrderCompletion {
	t.Helper()
	out := map[uuid.UUID]broker.WorkOrderCompletion{}
	for _, r := range f.ob.Pending() {
		if r.Kind != CompletionKind {
			continue
		}
		var c broker.WorkOrderCompletion
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatal(err)
		}
		id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(r.Path, "/api/v1/work-orders/"), "/complete"))
		if err != nil {
			t.Fatalf("completion path %q: %v", r.Path, err)
		}
		out[id] = c
	}
	return out
}

func (f *runnerFixture) waitJob(t *testing.T, name string) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		if _, err := f.cs.BatchV1().Jobs(f.ns).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return err.Error()
		}
		return ""
	})
}

// A claim another agent won is skipped; the next order is claimed, run and
// completed through the outbox.
func TestRunnerClaimsAndCompletes(t *testing.T) {
	f := newRunnerFixture(t, false)
	taken := order(workorder.TypeCustom, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: taken, namespace: %s}\n", f.ns))
	mine := order(workorder.TypeCustom, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine, namespace: %s}\n", f.ns))
	f.b.add(taken)
	f.b.add(mine)
	f.b.set(f.b.lost, taken.ID)
	f.run(t)
	eventually(t, 30*time.Second, func() string {
		if _, ok := f.completions(t)[mine.ID]; !ok {
			return "no completion queued"
		}
		return ""
	})
	c := f.completions(t)
	if got := c[mine.ID]; !got.Success || got.Message == nil || *got.Message != "applied 1 object(s)" {
		t.Errorf("completion = %+v", got)
	}
	if _, ok := c[taken.ID]; ok {
		t.Error("an order another agent claimed was completed")
	}
	if claims := f.b.claims(); len(claims) != 1 || claims[0] != mine.ID {
		t.Errorf("claims = %v", claims)
	}
}

// A 409 on a progress report means the claim is gone: the work stops and
// nothing is completed.
func TestRunnerAbandonsALostClaim(t *testing.T) {
	f := newRunnerFixture(t, true)
	o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "orphan"))
	o.ClaimTimeoutSeconds = 3 // progress at least every second
	f.b.add(o)
	f.run(t)
	f.waitJob(t, "orphan")
	f.b.set(f.b.revoked, o.ID)
	store, _ := OpenStore(f.state)
	eventually(t, 10*time.Second, func() string {
		if claims, _ := store.List(); len(claims) != 0 {
			return "the lost claim is still recorded"
		}
		return ""
	})
	if c := f.completions(t); len(c) != 0 {
		t.Errorf("a lost claim was completed: %+v", c)
	}
}

// Without durable state, a drain releases the order in flight as a
// retryable failure; with durable state it stays recorded for the next
// start, which resumes it after the broker confirms the claim.
func TestRunnerDrain(t *testing.T) {
	t.Run("memory state releases", func(t *testing.T) {
		f := newRunnerFixture(t, false)
		o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "released"))
		f.b.add(o)
		stop := f.run(t)
		f.waitJob(t, "released")
		stop()
		c, ok := f.completions(t)[o.ID]
		if !ok || c.Success || !c.Retryable || c.Message == nil || !strings.Contains(*c.Message, "agent stopped") {
			t.Fatalf("completion after a drain = %+v (%v)", c, ok)
		}
	})
	t.Run("durable state resumes", func(t *testing.T) {
		f := newRunnerFixture(t, true)
		o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "resumed"))
		f.b.add(o)
		stop := f.run(t)
		f.waitJob(t, "resumed")
		stop()
		if c := f.completions(t); len(c) != 0 {
			t.Fatalf("a durable drain completed the order: %+v", c)
		}
		store, _ := OpenStore(f.state)
		if claims, _ := store.List(); len(claims) != 1 || claims[0].Order.ID != o.ID {
			t.Fatalf("recorded claims after the drain = %+v", claims)
		}
		f.run(t)
		eventually(t, 10*time.Second, func() string {
			for _, m := range f.b.reports(o.ID) {
				if m == "agent restarted; resuming" {
					return ""
				}
			}
			return fmt.Sprintf("the claim was not confirmed after the restart: %q", f.b.reports(o.ID))
		})
		wotest.FinishJob(t, f.cs, f.ns, "resumed", true, "CompletionsReached", "done")
		eventually(t, 30*time.Second, func() string {
			if c, ok := f.completions(t)[o.ID]; !ok || !c.Success {
				return "the resumed order did not complete"
			}
			return ""
		})
		if n := len(f.b.claims()); n != 1 {
			t.Errorf("the order was claimed %d times; a resumed order is not claimed again", n)
		}
	})
	t.Run("a recorded claim the broker no longer confirms is dropped", func(t *testing.T) {
		f := newRunnerFixture(t, true)
		o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, "stale"))
		store, _ := OpenStore(f.state)
		if err := store.Save(Claim{Order: o, ClaimedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		f.b.set(f.b.revoked, o.ID)
		f.run(t)
		eventually(t, 10*time.Second, func() string {
			if claims, _ := store.List(); len(claims) != 0 {
				return "the unconfirmed claim is still recorded"
			}
			return ""
		})
		if _, err := f.cs.BatchV1().Jobs(f.ns).Get(context.Background(), "stale", metav1.GetOptions{}); err == nil {
			t.Error("an order whose claim is gone was executed")
		}
	})
}

// work_order_concurrency bounds the orders in flight; a finished one frees
// its slot for the next.
func TestRunnerConcurrencyBound(t *testing.T) {
	f := newRunnerFixture(t, false)
	f.opts.Concurrency = 2
	var ids []uuid.UUID
	for _, name := range []string{"one", "two", "three"} {
		o := order(workorder.TypeCustom, fmt.Sprintf(jobYAML, f.ns, name))
		ids = append(ids, o.ID)
		f.b.add(o)
	}
	f.run(t)
	f.waitJob(t, "one")
	f.waitJob(t, "two")
	// Two more progress reports of the first order (the periodic one,
	// every second: ten poll intervals): the third stays unclaimed.
	n := len(f.b.reports(ids[0]))
	eventually(t, 10*time.Second, func() string {
		if len(f.b.reports(ids[0])) < n+2 {
			return "no periodic progress report"
		}
		return ""
	})
	if claims := f.b.claims(); len(claims) != 2 {
		t.Fatalf("claims while two orders run = %v; want 2 with concurrency 2", claims)
	}
	wotest.FinishJob(t, f.cs, f.ns, "one", true, "CompletionsReached", "done")
	f.waitJob(t, "three")
	if claims := f.b.claims(); len(claims) != 3 || claims[2] != ids[2] {
		t.Errorf("claims after the first finished = %v", claims)
	}
	if c, ok := f.completions(t)[ids[0]]; !ok || !c.Success {
		t.Errorf("the first order's completion = %+v (%v)", c, ok)
	}
}
