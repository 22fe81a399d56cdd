package chaos

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	bins.Remove()
	if err := testenv.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// suiteConfig sizes a run. The short one runs inside `make test` (and `go
// test ./...`); BROKKR_CHAOS=full (`make chaos`) runs the full one.
type suiteConfig struct {
	name         string
	load         loadConfig
	rounds       int           // every fault once per round
	warmup       time.Duration // load before the first fault
	steady       time.Duration // load between a recovery and the next fault
	restartDelay time.Duration // between SIGKILL and the new process (what a kubelet adds)
	depDown      time.Duration // how long PostgreSQL or Redis stays down
	bound        time.Duration // every flow must be back within this after a restart
}

var (
	shortRun = suiteConfig{name: "short", load: loadConfig{agents: 6, stacks: 3, objectsPerS: 4, ordersPerS: 1},
		rounds: 1, warmup: 5 * time.Second, steady: 2 * time.Second, restartDelay: time.Second, depDown: 2 * time.Second, bound: 60 * time.Second}
	fullRun = suiteConfig{name: "full", load: loadConfig{agents: 20, stacks: 5, objectsPerS: 10, ordersPerS: 2},
		rounds: 3, warmup: 15 * time.Second, steady: 15 * time.Second, restartDelay: 2 * time.Second, depDown: 5 * time.Second, bound: 60 * time.Second}
)

// faults in the order they are injected in each round.
var faults = append(append([]string{}, serviceOrder...), "redis", "postgresql")

type faultRecord struct {
	round  int
	target string
	t0     time.Time     // injected
	back   time.Time     // the process started again, or the dependency answers again
	ready  time.Duration // from back until every process answered /readyz (PostgreSQL/Redis: without a restart)
	canary canaryResult  // from back
	exited []string      // processes that exited by themselves meanwhile (a defect)
}

type suite struct {
	t      *testing.T
	cfg    suiteConfig
	c      *cluster
	ld     *load
	faults []faultRecord
}

// TestChaos kills every service and dependency in turn under load and
// checks that nothing acknowledged was lost or done twice and that every
// flow recovers within the bound. docs/reliability.md has the figures.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite runs real processes, PostgreSQL, Redis and a kube-apiserver")
	}
	cfg := shortRun
	if os.Getenv("BROKKR_CHAOS") == "full" {
		cfg = fullRun
	}
	began := time.Now()
	s := &suite{t: t, cfg: cfg}
	s.c = newCluster(t)
	rcv := newReceiver(t)
	s.c.secrets = append(s.c.secrets, rcv.auth, rcv.secret, rcv.token)
	s.ld = newLoad(t, s.c, rcv, cfg.load)
	kube, err := s.c.kube.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("chaos (%s): set up in %v; logs in %s", cfg.name, time.Since(began).Round(time.Millisecond), s.c.dir)

	producers, stopProducers := context.WithCancel(context.Background())
	consumers, stopConsumers := context.WithCancel(context.Background())
	defer stopProducers()
	defer stopConsumers()
	s.ld.start(producers, consumers)
	time.Sleep(cfg.warmup)

	// A baseline canary without a fault: what "recovered" is compared to.
	base := s.ld.canary(time.Now(), 0, cfg.bound, kube)
	if len(base.errs) > 0 {
		s.explainRealAgent()
		t.Fatalf("the flows do not work even without a fault: %v", base.errs)
	}
	n := 1
	for round := 1; round <= cfg.rounds; round++ {
		for _, target := range faults {
			r := s.inject(round, target, n, kube)
			n++
			s.faults = append(s.faults, r)
			for _, e := range r.canary.errs {
				t.Errorf("round %d, %s: %s", round, target, e)
			}
			for _, name := range r.exited {
				t.Errorf("round %d, %s: %s exited by itself instead of recovering", round, target, name)
			}
			t.Logf("round %d %-20s ready %6.2fs, flows %6.2fs (last: %s)", round, target, r.ready.Seconds(), r.canary.total.Seconds(), r.canary.last)
			time.Sleep(cfg.steady)
		}
	}
	stopProducers()
	s.ld.producers.Wait()
	s.ld.stopped = time.Now()
	s.drain(consumers)
	stopConsumers()
	s.ld.consumers.Wait()
	s.check(base)
	t.Logf("chaos (%s): %v in total", cfg.name, time.Since(began).Round(time.Second))
}

// inject applies one fault, restarts what it stopped and times the recovery.
func (s *suite) inject(round int, target string, n int, kube kubeClient) faultRecord {
	t, c := s.t, s.c
	r := faultRecord{round: round, target: target, t0: time.Now()}
	switch target {
	case "postgresql":
		// SIGQUIT is PostgreSQL's immediate shutdown: no checkpoint, every
		// backend killed, crash recovery at the next start.
		if err := c.pg.signal(syscall.SIGQUIT, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(s.cfg.depDown)
		if err := c.pg.start(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.pg.waitReady(c.client, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	case "redis":
		if err := c.redis.kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(s.cfg.depDown)
		if err := c.redis.start(); err != nil { // empty: no persistence
			t.Fatal(err)
		}
		if _, err := c.redis.waitReady(c.client, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	default:
		p := c.svc[target]
		if err := p.kill(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(s.cfg.restartDelay)
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}
	r.back = time.Now()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.canary = s.ld.canary(r.back, n, s.cfg.bound, kube) }()
	var mu sync.Mutex
	for _, name := range serviceOrder {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := c.svc[name]
			_, err := p.waitReady(c.client, s.cfg.bound)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if name != target && !p.running() {
					r.exited = append(r.exited, name)
					// Restart it so the run can go on; the test fails anyway.
					_ = p.start()
					return
				}
				t.Errorf("round %d, %s: %v", round, target, err)
			}
			if d := time.Since(r.back); d > r.ready {
				r.ready = d
			}
		}()
	}
	wg.Wait()
	return r
}

// drain lets the simulated agents finish every order and waits until every
// event was relayed and every delivery made.
func (s *suite) drain(consumers context.Context) {
	t := s.t
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := s.c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	var orders, outbox, open int
	for {
		_ = db.QueryRow(ctx, `SELECT (SELECT count(*) FROM work_orders),
			(SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL),
			(SELECT count(*) FROM webhook_deliveries WHERE status <> 'success')`).Scan(&orders, &outbox, &open)
		if orders == 0 && outbox == 0 && open == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Errorf("not drained within 3 minutes of the end of the load: %d work orders left, %d outbox events not relayed, %d deliveries not successful",
				orders, outbox, open)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// report collects the lines of the run's report.
type report struct {
	lines []string
}

func (r *report) add(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (s *suite) check(base canaryResult) {
	t, ld, c := s.t, s.ld, s.c
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := c.db(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	ld.l.mu.Lock()
	defer ld.l.mu.Unlock()
	var rep report

	// 1. Every acknowledged deployment object is stored, and its
	// deployment.created reached both subscriptions.
	objIDs := keys(ld.l.objects)
	stored := idSet(ctx, t, db, `SELECT id::text FROM deployment_objects WHERE id = ANY($1::uuid[])`, objIDs)
	lostObjects, lostCreated := 0, 0
	for _, id := range objIDs {
		if !stored[id] {
			lostObjects++
			t.Errorf("deployment object %s was acknowledged but is not stored", id)
		}
		for _, sub := range []string{"all", "deploy"} {
			if _, ok := ld.rcv.seen(sub, "deployment.created", id); !ok {
				lostCreated++
				t.Errorf("deployment.created of %s never reached subscription %q", id, sub)
			}
		}
	}

	// 2. Every acknowledged agent event is stored and its
	// deployment.applied reached both subscriptions.
	evIDs := make([]string, 0, len(ld.l.events))
	for id := range ld.l.events {
		evIDs = append(evIDs, id)
	}
	storedEv := idSet(ctx, t, db, `SELECT id::text FROM agent_events WHERE id = ANY($1::uuid[])`, evIDs)
	lostEvents, lostApplied := 0, 0
	for _, id := range evIDs {
		if !storedEv[id] {
			lostEvents++
			t.Errorf("agent event %s was acknowledged but is not stored", id)
		}
		for _, sub := range []string{"all", "deploy"} {
			if _, ok := ld.rcv.seen(sub, "deployment.applied", id); !ok {
				lostApplied++
				t.Errorf("deployment.applied of agent event %s never reached subscription %q", id, sub)
			}
		}
	}

	// 3. Every event of the outbox became a delivery of each matching
	// subscription, every delivery succeeded and reached the receiver.
	var eventsTotal, missingAll, missingDeploy int
	if err := db.QueryRow(ctx, `
		SELECT count(*),
		  count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id AND d.subscription_id = $1)),
		  count(*) FILTER (WHERE o.event_type LIKE 'deployment.%' AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = o.id AND d.subscription_id = $2))
		FROM outbox_events o WHERE o.created_at > (SELECT max(created_at) FROM webhook_subscriptions)`,
		ld.subs["all"], ld.subs["deploy"]).Scan(&eventsTotal, &missingAll, &missingDeploy); err != nil {
		t.Fatal(err)
	}
	if missingAll+missingDeploy > 0 {
		t.Errorf("%d outbox events have no delivery for subscription all, %d deployment events none for deploy", missingAll, missingDeploy)
	}
	rows, err := db.Query(ctx, `SELECT id::text, status FROM webhook_deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	deliveries, undelivered, notSuccess := 0, 0, 0
	for rows.Next() {
		var id, status string
		if err := rows.Scan(&id, &status); err != nil {
			t.Fatal(err)
		}
		deliveries++
		if status != "success" {
			notSuccess++
			t.Errorf("delivery %s ended %s", id, status)
		}
		if !ld.rcv.delivered(id) {
			undelivered++
			t.Errorf("delivery %s never reached the receiver", id)
		}
	}
	rows.Close()

	// 4. Repeated deliveries: each must be explained by a fault that hit
	// webhook-dispatch or PostgreSQL between an attempt reaching the
	// receiver and its outcome being recorded.
	repeats := ld.rcv.repeats()
	extra, unexplained := 0, 0
	for id, hs := range repeats {
		for i := 1; i < len(hs); i++ {
			extra++
			if !s.explains(hs[i-1].at, hs[i].at) {
				unexplained++
				t.Errorf("delivery %s (%s) arrived again at %s, %v after the previous attempt, with no fault of webhook-dispatch or PostgreSQL in between",
					id, hs[i].eventType, hs[i].at.Format("15:04:05.000"), hs[i].at.Sub(hs[i-1].at).Round(time.Millisecond))
			}
		}
	}
	fanOut := ld.rcv.fanOutDuplicates()
	if fanOut > 0 {
		t.Errorf("%d events reached one subscription under two delivery ids", fanOut)
	}
	hitsTotal, hitsDistinct, badSig, badAuth := ld.rcv.counts()
	if badSig+badAuth > 0 {
		t.Errorf("%d requests with a bad signature, %d with a wrong Authorization header", badSig, badAuth)
	}

	// 5. Work orders: every acknowledged one completed exactly once, each
	// attempt claimed by exactly one agent.
	type logRow struct {
		claimedBy string
		success   bool
		retries   int
	}
	logs := map[string]logRow{}
	rows, err = db.Query(ctx, `SELECT id::text, coalesce(claimed_by::text, ''), success, retries_attempted FROM work_order_log`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r logRow
		if err := rows.Scan(&id, &r.claimedBy, &r.success, &r.retries); err != nil {
			t.Fatal(err)
		}
		logs[id] = r
	}
	rows.Close()
	claimEvents := map[string]int{}
	rows, err = db.Query(ctx, `SELECT payload->'data'->>'work_order_id', count(*) FROM outbox_events WHERE event_type = 'workorder.claimed' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var k int
		if err := rows.Scan(&id, &k); err != nil {
			t.Fatal(err)
		}
		claimEvents[id] = k
	}
	rows.Close()
	lostOrders, badClaims, retried := 0, 0, 0
	for id := range ld.l.orders {
		lr, ok := logs[id]
		if !ok || !lr.success {
			lostOrders++
			t.Errorf("work order %s was acknowledged but did not complete successfully (logged: %v)", id, ok)
			continue
		}
		retried += lr.retries
		claims := ld.l.claims[id]
		if len(claims) != lr.retries+1 {
			badClaims++
			t.Errorf("work order %s: %d claims held by agents (%v) for %d attempts", id, len(claims), claims, lr.retries+1)
		} else if claims[len(claims)-1] != lr.claimedBy {
			badClaims++
			t.Errorf("work order %s completed by %s but last claimed by %s", id, lr.claimedBy, claims[len(claims)-1])
		}
		if claimEvents[id] != lr.retries+1 {
			badClaims++
			t.Errorf("work order %s: %d workorder.claimed events for %d attempts", id, claimEvents[id], lr.retries+1)
		}
	}
	for id, claims := range ld.l.claims {
		if _, ok := ld.l.orders[id]; !ok && len(claims) > 1 {
			// An order whose create went unanswered: still one claim per attempt.
			if lr, ok := logs[id]; !ok || len(claims) != lr.retries+1 {
				badClaims++
				t.Errorf("work order %s (create unanswered): claims %v", id, claims)
			}
		}
	}

	// 6. The real agent ends with the newest object of its load stack
	// applied and reported.
	s.checkRealAgent(ctx, db)

	// 7. No secret in any log.
	files, lines := c.scanLogs(t)

	// The report.
	secs, rateLines := ld.rates()
	rep.add("Run: %s, %d round(s), %.0f s of load (%d simulated agents, %d stacks, one real agent), %d faults.",
		s.cfg.name, s.cfg.rounds, secs, s.cfg.load.agents, s.cfg.load.stacks, len(s.faults))
	rep.add("")
	rep.add("| operation | requests | acknowledged per second | answers |")
	rep.add("|---|---|---|---|")
	rep.lines = append(rep.lines, rateLines...)
	rep.add("")
	rep.add("| what | acknowledged | lost |")
	rep.add("|---|---|---|")
	rep.add("| deployment objects (stored) | %d | %d |", len(objIDs), lostObjects)
	rep.add("| deployment.created deliveries (2 subscriptions) | %d | %d |", 2*len(objIDs), lostCreated)
	rep.add("| agent events (stored) | %d | %d |", len(evIDs), lostEvents)
	rep.add("| deployment.applied deliveries (2 subscriptions) | %d | %d |", 2*len(evIDs), lostApplied)
	rep.add("| outbox events → deliveries | %d events, %d deliveries | %d without delivery; %d not successful; %d never received |",
		eventsTotal, deliveries, missingAll+missingDeploy, notSuccess, undelivered)
	rep.add("| work orders (completed once, one claim per attempt) | %d (%d retried attempts) | %d lost, %d with wrong claims |",
		len(ld.l.orders), retried, lostOrders, badClaims)
	rep.add("")
	rep.add("Receiver: %d requests, %d distinct delivery ids; %d repeated requests (%d explained by a fault of webhook-dispatch or PostgreSQL, %d unexplained); %d events under two delivery ids; %d bad signatures or auth headers.",
		hitsTotal, hitsDistinct, extra, extra-unexplained, unexplained, fanOut, badSig+badAuth)
	rep.add("Secret scan: %d log files, %d lines: no PAK (the bootstrap admin PAK included: it is on auth's stdout only, apart from the logs), webhook secret, auth header or URL token.", files, lines)
	rep.add("")
	rep.add("Recovery, from the restart (or the dependency answering again) until every service answers /readyz, and until every flow went through again (bound %v):", s.cfg.bound)
	rep.add("")
	rep.add("| fault | down | all ready | flows back | slowest flow | %s | 503 | other 5xx |", strings.Join(canarySteps, " | "))
	rep.add("|---|---|---|---|---|%s---|---|", strings.Repeat("---|", len(canarySteps)))
	rep.add("| none (baseline) | – | – | %.1f s | %s | %s | – | – |", base.total.Seconds(), base.last, stepCells(base))
	c.serverErrsMu.Lock()
	serverErrs := append([]serverErr(nil), c.serverErrs...)
	c.serverErrsMu.Unlock()
	attributed := 0
	worst := map[string]time.Duration{}
	for _, f := range s.faults {
		// Server errors answered from the fault until the flows were back.
		n503, nBad := 0, 0
		for _, e := range serverErrs {
			if !e.at.Before(f.t0) && !e.at.After(f.back.Add(max(f.ready, f.canary.total))) {
				attributed++
				if e.bad() {
					nBad++
				} else {
					n503++
				}
			}
		}
		rep.add("| %d: %s | %.1f s | %.1f s | %.1f s | %s | %s | %d | %d |", f.round, f.target, f.back.Sub(f.t0).Seconds(), f.ready.Seconds(),
			f.canary.total.Seconds(), f.canary.last, stepCells(f.canary), n503, nBad)
		worst[f.target] = max(worst[f.target], f.canary.total)
		if f.canary.total > s.cfg.bound {
			t.Errorf("%s: flows back after %v, above the bound %v", f.target, f.canary.total, s.cfg.bound)
		}
	}
	rep.add("")
	var ws []string
	for _, f := range faults {
		ws = append(ws, fmt.Sprintf("%s %.1f s", f, worst[f].Seconds()))
	}
	rep.add("Worst recovery per fault: %s.", strings.Join(ws, ", "))
	// The contract: a dependency down or a process restarting is 503 with
	// Retry-After; any other 5xx (or a 503 without Retry-After) is a bug.
	var bad []serverErr
	for _, e := range serverErrs {
		if e.bad() {
			bad = append(bad, e)
		}
	}
	rep.add("Server errors: %d answers of 503, all with Retry-After; %d other 5xx or 503 without Retry-After (must be 0); %d of all of them outside any fault window.",
		len(serverErrs)-len(bad), len(bad), len(serverErrs)-attributed)
	for i, e := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-i)
			break
		}
		t.Errorf("server error other than 503 with Retry-After: %s", e)
	}
	out := strings.Join(rep.lines, "\n") + "\n"
	t.Log("\n" + out)
	if path := os.Getenv("BROKKR_CHAOS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func stepCells(r canaryResult) string {
	var cells []string
	for _, st := range canarySteps {
		if d, ok := r.steps[st]; ok {
			cells = append(cells, fmt.Sprintf("%.1f", d.Seconds()))
		} else {
			cells = append(cells, "–")
		}
	}
	return strings.Join(cells, " | ")
}

// explains reports whether a fault that can make an attempt's outcome go
// unrecorded (webhook-dispatch killed, PostgreSQL down) happened between two
// arrivals of the same delivery.
func (s *suite) explains(first, again time.Time) bool {
	for _, f := range s.faults {
		if f.target != "webhook-dispatch" && f.target != "postgresql" {
			continue
		}
		// The outcome of an attempt is recorded right after the receiver
		// answered: a first arrival shortly before the fault (the recording
		// may wait on a busy database) or during the outage, and the repeat
		// after the fault, is explained.
		if !first.Before(f.t0.Add(-5*time.Second)) && !first.After(f.back) && again.After(f.t0) {
			return true
		}
	}
	return false
}

func keys(m map[string]time.Time) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
