package dispatcher_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

func TestRetriesWithGrowingDelaysThenSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	rcv := newReceiver(t, func(_ string, n int, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("not yet"))
		}
	})
	sub := h.subscribe(webhook.Subscription{EventTypes: []string{"stack.*"}, MaxRetries: 5}, rcv.URL+"/hook", "Bearer t", "k")
	ev := h.emit("stack.created", map[string]any{"stack_id": uuid.NewString(), "name": "s"})

	testsupport.Eventually(t, 20*time.Second, "delivery success", func() bool {
		ds := h.deliveries(sub.ID)
		return len(ds) == 1 && ds[0].Status == webhook.StatusSuccess
	})
	d := h.deliveries(sub.ID)[0]
	if d.Attempts != 3 || d.LastError != nil || d.LastStatusCode == nil || *d.LastStatusCode != 200 {
		t.Fatalf("delivery after 500, 500, 200: %+v", d)
	}
	hits := rcv.all()
	if len(hits) != 3 {
		t.Fatalf("%d requests, want 3", len(hits))
	}
	for _, x := range hits {
		if x.header.Get(webhook.HeaderDeliveryID) != d.ID.String() || envelope(t, x.body).ID != ev.ID {
			t.Fatalf("every retry carries the same delivery id and event: %v", x.header)
		}
	}
	// Backoff 2^n s with up to 25 % jitter, rounded up to the queue's
	// one-second resolution: about 2–3.5 s, then 4–6 s.
	gap1, gap2 := hits[1].at.Sub(hits[0].at), hits[2].at.Sub(hits[1].at)
	if gap1 < 2*time.Second || gap2 < 4*time.Second || gap2 <= gap1 {
		t.Fatalf("delays %v then %v: want at least 2 s, then at least 4 s and growing", gap1, gap2)
	}
	if gap2 > 8*time.Second {
		t.Errorf("second delay %v is far beyond its backoff", gap2)
	}
	if got := counterValue(t, h, "brokkr_webhook_deliveries_total", "failed"); got != 2 {
		t.Errorf("failed attempts counted %v, want 2", got)
	}
}

func TestClientErrorIsDeadAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	rcv := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("bad payload"))
	})
	sub := h.subscribe(webhook.Subscription{MaxRetries: 5}, rcv.URL, "", "")
	h.emit("agent.registered", map[string]any{"agent_id": uuid.NewString()})
	testsupport.Eventually(t, 10*time.Second, "dead delivery", func() bool {
		ds := h.deliveries(sub.ID)
		return len(ds) == 1 && ds[0].Status == webhook.StatusDead
	})
	d := h.deliveries(sub.ID)[0]
	if d.Attempts != 1 || d.LastStatusCode == nil || *d.LastStatusCode != 400 || d.LastError == nil ||
		*d.LastError != "HTTP 400 Bad Request: bad payload" {
		t.Fatalf("dead delivery %+v", d)
	}
	// Nothing is left in the queue that could try again.
	in := asynq.NewInspector(h.conn)
	defer in.Close()
	testsupport.Eventually(t, 5*time.Second, "an empty queue", func() bool {
		q, err := in.GetQueueInfo(h.queue)
		return err == nil && q.Pending+q.Active+q.Scheduled+q.Retry == 0
	})
	if n := rcv.count(); n != 1 {
		t.Fatalf("a 400 was tried %d times", n)
	}
	var actor string
	if err := h.db.Get(&actor, `SELECT actor_type FROM audit_logs WHERE action = 'webhook.delivery_failed'
		AND resource_id = $1`, sub.ID); err != nil || actor != "system" {
		t.Fatalf("dead delivery audit: %q %v", actor, err)
	}
	if got := counterValue(t, h, "brokkr_webhook_dead_letters_total", ""); got != 1 {
		t.Errorf("dead letters %v", got)
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	release := make(chan struct{})
	defer close(release)
	rcv := newReceiver(t, func(_ string, _ int, w http.ResponseWriter) {
		select {
		case <-release:
		case <-time.After(3 * time.Second):
		}
	})
	sub := h.subscribe(webhook.Subscription{MaxRetries: 1, TimeoutSeconds: 1}, rcv.URL, "", "")
	h.emit("stack.deleted", map[string]any{"stack_id": uuid.NewString()})
	testsupport.Eventually(t, 15*time.Second, "dead after one retry", func() bool {
		ds := h.deliveries(sub.ID)
		return len(ds) == 1 && ds[0].Status == webhook.StatusDead
	})
	d := h.deliveries(sub.ID)[0]
	if d.Attempts != 2 || d.LastStatusCode != nil || d.LastError == nil || *d.LastError != "Request failed: request timed out" {
		t.Fatalf("timed-out delivery %+v", d)
	}
	if n := rcv.count(); n != 2 {
		t.Fatalf("%d attempts reached the receiver, want 2 (first + 1 retry)", n)
	}
}

func TestSSRFGuardRefusesLoopbackForGood(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{guard: true})
	rcv := newReceiver(t, nil)
	sub := h.subscribe(webhook.Subscription{}, strings.Replace(rcv.URL, "127.0.0.1", "localhost", 1), "", "")
	h.emit("stack.created", map[string]any{"stack_id": uuid.NewString()})
	testsupport.Eventually(t, 10*time.Second, "refused delivery", func() bool {
		ds := h.deliveries(sub.ID)
		return len(ds) == 1 && ds[0].Status == webhook.StatusDead
	})
	d := h.deliveries(sub.ID)[0]
	if d.Attempts != 1 || *d.LastError != "Request failed: destination address not allowed (loopback)" || rcv.count() != 0 {
		t.Fatalf("guarded delivery %+v, receiver hits %d", d, rcv.count())
	}
}

func TestSweepRelaysWhenNoSignalArrives(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noSignal: true, interval: time.Second})
	rcv := newReceiver(t, nil)
	sub := h.subscribe(webhook.Subscription{}, rcv.URL, "", "")
	for range 5 {
		h.emit("deployment.created", map[string]any{"deployment_object_id": uuid.NewString()})
	}
	testsupport.Eventually(t, 10*time.Second, "five deliveries", func() bool { return rcv.count() == 5 })
	// These come after the start-up sweep: only a periodic one finds them.
	start := time.Now()
	for range 5 {
		h.emit("deployment.created", map[string]any{"deployment_object_id": uuid.NewString()})
	}
	testsupport.Eventually(t, 10*time.Second, "ten deliveries", func() bool { return rcv.count() == 10 })
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the 1 s sweep took %v to deliver", took)
	}
	// The receiver counts a request before the worker records its result.
	testsupport.Eventually(t, 5*time.Second, "every delivery recorded as success", func() bool {
		for _, d := range h.deliveries(sub.ID) {
			if d.Status != webhook.StatusSuccess {
				return false
			}
		}
		return true
	})
}

func TestFanOutPatternsFiltersAndModes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	rcv := newReceiver(t, nil)
	// An agent with a label and an annotation, and a stack with a label.
	var agentID, stackID, otherStack, objectID uuid.UUID
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(h.db.Get(&agentID, `INSERT INTO agents (name, cluster_name) VALUES ('a', 'c') RETURNING id`))
	h.db.MustExec(`INSERT INTO agent_labels (agent_id, label) VALUES ($1, 'env:production')`, agentID)
	h.db.MustExec(`INSERT INTO agent_annotations (agent_id, key, value) VALUES ($1, 'region', 'eu')`, agentID)
	must(h.db.Get(&stackID, `INSERT INTO stacks (name) VALUES ('s1') RETURNING id`))
	must(h.db.Get(&otherStack, `INSERT INTO stacks (name) VALUES ('s2') RETURNING id`))
	h.db.MustExec(`INSERT INTO stack_labels (stack_id, label) VALUES ($1, 'tier=1')`, stackID)
	must(h.db.Get(&objectID, `INSERT INTO deployment_objects (stack_id, yaml_content, yaml_checksum) VALUES ($1, 'x', 'c')
		RETURNING id`, stackID))

	key := "sign-" + randomHex(4)
	all := h.subscribe(webhook.Subscription{Name: "all", EventTypes: []string{"*"}}, rcv.URL+"/all", "Token abc", key)
	deploy := h.subscribe(webhook.Subscription{Name: "deploy", EventTypes: []string{"deployment.*"}}, rcv.URL+"/deploy", "", "")
	byAgent := h.subscribe(webhook.Subscription{Name: "by-agent", Filters: &webhook.Filters{AgentID: &agentID}}, rcv.URL+"/agent", "", "")
	byStack := h.subscribe(webhook.Subscription{Name: "by-stack", Filters: &webhook.Filters{StackID: &stackID}}, rcv.URL+"/stack", "", "")
	byLabels := h.subscribe(webhook.Subscription{Name: "by-labels", EventTypes: []string{"deployment.applied"},
		Filters: &webhook.Filters{Labels: map[string]string{"env": "production", "tier": "1"}}}, rcv.URL+"/labels", "", "")
	disabled := h.subscribe(webhook.Subscription{Name: "off"}, rcv.URL+"/off", "", "")
	h.db.MustExec(`UPDATE webhook_subscriptions SET enabled = false WHERE id = $1`, disabled.ID)
	inCluster := h.subscribe(webhook.Subscription{Name: "agent-mode", TargetLabels: []string{"role:monitoring"}}, rcv.URL+"/cluster", "", "")

	evApplied := h.emit("deployment.applied", map[string]any{"agent_id": agentID.String(), "deployment_object_id": objectID.String(),
		"status": "SUCCESS"})
	evOther := h.emit("stack.created", map[string]any{"stack_id": otherStack.String(), "name": "s2"})
	evAgent := h.emit("agent.registered", map[string]any{"agent_id": agentID.String()})

	want := map[uuid.UUID][]uuid.UUID{
		all.ID:       {evApplied.ID, evOther.ID, evAgent.ID},
		deploy.ID:    {evApplied.ID},
		byAgent.ID:   {evApplied.ID, evAgent.ID},
		byStack.ID:   {evApplied.ID}, // through the deployment object's stack
		byLabels.ID:  {evApplied.ID}, // agent label env:production + stack label tier=1
		disabled.ID:  nil,
		inCluster.ID: {evApplied.ID, evOther.ID, evAgent.ID},
	}
	testsupport.Eventually(t, 10*time.Second, "every broker delivery made", func() bool { return rcv.count() == 3+1+2+1+1 })
	for sub, events := range want {
		ds := h.deliveries(sub)
		got := map[uuid.UUID]bool{}
		for _, d := range ds {
			got[d.EventID] = true
		}
		if len(ds) != len(events) {
			t.Errorf("subscription %s: %d deliveries, want %d", sub, len(ds), len(events))
		}
		for _, e := range events {
			if !got[e] {
				t.Errorf("subscription %s: no delivery of event %s", sub, e)
			}
		}
	}
	for _, d := range h.deliveries(inCluster.ID) {
		if d.Status != webhook.StatusPending {
			t.Errorf("an agent-mode delivery was not left for the agents: %+v", d)
		}
	}
	for _, x := range rcv.all() {
		ev := envelope(t, x.body)
		// The original's compact envelope, fields in order (not jsonb's).
		if prefix := `{"id":"` + ev.ID.String() + `","event_type":"` + ev.Type + `","timestamp":"`; !strings.HasPrefix(string(x.body), prefix) {
			t.Errorf("body %s does not start with %s", x.body, prefix)
		}
		if x.header.Get(webhook.HeaderEventType) != ev.Type || x.header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v for %s", x.header, ev.Type)
		}
		signed := x.header.Get(webhook.HeaderSignature) != ""
		if signed != (x.header.Get("Authorization") == "Token abc") {
			t.Errorf("only the subscription with a key signs and authenticates: %v", x.header)
		}
		if signed && !webhook.Verify([]byte(key), x.body, x.header.Get(webhook.HeaderSignature)) {
			t.Errorf("bad signature on %s", x.body)
		}
	}

	// Replaying the outbox creates no second delivery.
	before := rcv.count()
	h.db.MustExec(`UPDATE outbox_events SET dispatched_at = NULL`)
	if _, err := h.svc.Dispatcher().Relay(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	_ = h.db.Get(&n, `SELECT count(*) FROM webhook_deliveries`)
	if n != 3+1+2+1+1+3 || rcv.count() != before {
		t.Fatalf("replay created deliveries: %d rows, %d requests", n, rcv.count())
	}
}

func TestPerHostLimitKeepsOtherHostsFlowing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{perHost: 2, concurrency: 6})
	release := make(chan struct{})
	var inFlight, peak atomic.Int32
	slow := newReceiver(t, func(string, int, http.ResponseWriter) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
	})
	fast := newReceiver(t, nil)
	slowSub := h.subscribe(webhook.Subscription{Name: "slow", EventTypes: []string{"stack.created"}, TimeoutSeconds: 30}, slow.URL, "", "")
	h.subscribe(webhook.Subscription{Name: "fast", EventTypes: []string{"agent.registered"}}, fast.URL, "", "")
	for range 8 {
		h.emit("stack.created", map[string]any{"stack_id": uuid.NewString()})
	}
	testsupport.Eventually(t, 10*time.Second, "the slow host saturated", func() bool { return inFlight.Load() == 2 })
	for range 10 {
		h.emit("agent.registered", map[string]any{"agent_id": uuid.NewString()})
	}
	// The fast host is served while the slow one holds its two slots.
	testsupport.Eventually(t, 10*time.Second, "the fast host served", func() bool { return fast.count() == 10 })
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d concurrent requests to one host, limit 2", p)
	}
	close(release)
	testsupport.Eventually(t, 30*time.Second, "the slow host drained", func() bool {
		for _, d := range h.deliveries(slowSub.ID) {
			if d.Status != webhook.StatusSuccess {
				return false
			}
		}
		return len(h.deliveries(slowSub.ID)) == 8
	})
	for _, d := range h.deliveries(slowSub.ID) {
		if d.Attempts != 1 {
			t.Errorf("throttling counted as an attempt: %+v", d)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d concurrent requests to one host, limit 2", p)
	}
	if got := counterValue(t, h, "brokkr_webhook_host_throttled_total", ""); got == 0 {
		t.Error("no throttling counted")
	}
}

func TestRetentionCleanupIsHot(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	sub := h.subscribe(webhook.Subscription{}, "http://127.0.0.1:9/x", "", "")
	h.db.MustExec(`INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload, status, completed_at)
		VALUES ($1, gen_random_uuid(), 'x', '{}', 'success', now() - interval '3 days'),
		       ($1, gen_random_uuid(), 'x', '{}', 'dead', now() - interval '3 days'),
		       ($1, gen_random_uuid(), 'x', '{}', 'success', now() - interval '1 hour')`, sub.ID)
	h.db.MustExec(`INSERT INTO webhook_deliveries (subscription_id, event_id, event_type, payload, status, next_retry_at, created_at)
		VALUES ($1, gen_random_uuid(), 'x', '{}', 'failed', now() + interval '1 hour', now() - interval '30 days')`, sub.ID)
	var gone int64
	var err error
	if gone, err = h.svc.Dispatcher().Cleanup(context.Background()); err != nil || gone != 0 {
		t.Fatalf("7-day retention deleted %d (%v)", gone, err)
	}
	h.setRetention(2) // a hot reload
	if gone, err = h.svc.Dispatcher().Cleanup(context.Background()); err != nil || gone != 2 {
		t.Fatalf("2-day retention deleted %d (%v), want the two old terminal rows", gone, err)
	}
	if ds := h.deliveries(sub.ID); len(ds) != 2 {
		t.Fatalf("%d rows left, want the recent success and the failed one", len(ds))
	}
}

func TestMetricsExposeQueueAndStates(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	rcv := newReceiver(t, nil)
	h.subscribe(webhook.Subscription{}, rcv.URL, "", "")
	h.subscribe(webhook.Subscription{TargetLabels: []string{"x"}}, rcv.URL, "", "")
	h.emit("stack.created", map[string]any{})
	testsupport.Eventually(t, 10*time.Second, "one recorded delivery", func() bool {
		return counterValue(t, h, "brokkr_webhook_deliveries_total", "success") == 1
	})
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() == "brokkr_webhook_deliveries" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "pending" && m.GetGauge().GetValue() != 1 {
					t.Errorf("pending deliveries gauge %v, want 1 (the agent-mode one)", m.GetGauge().GetValue())
				}
			}
		}
	}
	for _, name := range []string{"brokkr_webhook_deliveries_total", "brokkr_webhook_delivery_duration_seconds",
		"brokkr_webhook_queue_depth", "brokkr_webhook_deliveries", "brokkr_webhook_outbox_backlog",
		"brokkr_webhook_dead_letters_total", "brokkr_webhook_events_relayed_total"} {
		if !found[name] {
			t.Errorf("metric %s missing", name)
		}
	}
}

// counterValue reads a counter by name and (first) label value.
func counterValue(t *testing.T, h *harness, name, label string) float64 {
	t.Helper()
	mfs, err := h.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Every recorded attempt is a note to the api's live console views: a
// replica's change hub on the same tenant is woken within a second or two
// of a delivery's outcome, and a burst of outcomes costs few messages.
func TestDeliveryOutcomesWakeConsoleViews(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	api := redisadapter.NewChanges(h.rdb, h.tenant, nil, nil) // an api replica's hub
	go api.Run(ctx)
	testsupport.Eventually(t, 5*time.Second, "change subscription", api.Subscribed)
	watch, stop := api.Watch()
	defer stop()
	select { // the wake-up of the subscription itself
	case <-watch:
	case <-time.After(300 * time.Millisecond):
	}
	seqKey := "brokkr:" + h.tenant + ":changes:seq"
	before, _ := h.rdb.Get(ctx, seqKey).Int64()

	rcv := newReceiver(t, func(string, int, http.ResponseWriter) {})
	sub := h.subscribe(webhook.Subscription{EventTypes: []string{"stack.*"}, MaxRetries: 1}, rcv.URL+"/hook", "", "")
	for i := range 20 {
		h.emit("stack.created", map[string]any{"stack_id": uuid.NewString(), "name": fmt.Sprint("s", i)})
	}
	select {
	case <-watch:
	case <-time.After(10 * time.Second):
		t.Fatal("no note reached the api's change hub after a delivery")
	}
	testsupport.Eventually(t, 20*time.Second, "20 deliveries", func() bool {
		n := 0
		for _, d := range h.deliveries(sub.ID) {
			if d.Status == webhook.StatusSuccess {
				n++
			}
		}
		return n == 20
	})
	time.Sleep(1500 * time.Millisecond) // the last window's trailing note
	after, _ := h.rdb.Get(ctx, seqKey).Int64()
	took := after - before
	if took < 1 {
		t.Fatalf("%d notes published for 20 outcomes", took)
	}
	// Coalesced to one per second (plus the trailing one): far fewer
	// than the 20 outcomes on any machine that delivers them in a few
	// seconds.
	if took >= 20 {
		t.Errorf("%d notes published for 20 outcomes: not coalesced", took)
	}
	t.Logf("%d notes for 20 delivery outcomes", took)
}
