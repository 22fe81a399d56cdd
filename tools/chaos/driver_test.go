package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load driver: one generator creating deployment objects (plain and
// from a template) in its stacks, an admin creating work orders, and
// simulated agents that poll their target state, report a DEPLOY/SUCCESS
// event for every object they get, and claim and complete work orders. It
// keeps a ledger of every effect the broker acknowledged, which the final
// checks compare with the database and the webhook receiver.

const (
	simYAML   = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: sim-%d\n  namespace: default\ndata:\n  n: \"%d\"\n"
	loadYAML  = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %[1]s\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chaos-load\n  namespace: %[1]s\ndata:\n  seq: \"%[2]d\"\n"
	canaryCM  = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %[1]s\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chaos-canary\n  namespace: %[1]s\ndata:\n  canary: \"%[2]s\"\n"
	jobYAML   = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: chaos\n  namespace: default\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"
	tplSource = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n  namespace: default\ndata:\n  n: \"{{ n }}\"\n"
	tplSchema = `{"type":"object","required":["name","n"],"properties":{"name":{"type":"string","minLength":1},"n":{"type":"integer"}}}`
	// retryType marks canary work orders whose first attempt the
	// simulated agents fail (retryable), so the scheduler must release them.
	retryType = "chaos-retry"
)

// loadConfig sizes the load.
type loadConfig struct {
	agents      int     // simulated agents
	stacks      int     // generator stacks the simulated agents target
	objectsPerS float64 // deployment objects created per second
	ordersPerS  float64 // work orders created per second
}

type simAgent struct {
	id, pak string
	held    map[string]string // work order id → work type, claimed and not yet completed
}

type ledger struct {
	mu        sync.Mutex
	objects   map[string]time.Time // acknowledged deployment objects
	events    map[string]string    // acknowledged agent events → deployment object
	orders    map[string]time.Time // acknowledged work orders
	claims    map[string][]string  // work order → agents that hold(held) its claim
	completes map[string]int       // work order → acknowledged completions
	status    map[string]map[string]int
	lastLoad  int // seq of the last object acknowledged in the real agent's load stack
}

func (l *ledger) count(op, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status[op] == nil {
		l.status[op] = map[string]int{}
	}
	l.status[op][outcome]++
}

// outcome names a response for the tallies: the status code, or
// "no answer".
func outcome(status int, err error) string {
	if err != nil && status == 0 {
		return "no answer"
	}
	return strconv.Itoa(status)
}

// ambiguous means the caller cannot know whether the request took effect.
func ambiguous(status int, err error) bool { return err != nil || status >= 500 }

type load struct {
	t         *testing.T
	c         *cluster
	cfg       loadConfig
	rcv       *receiver
	genID     string
	genPAK    string
	stacks    []string
	loadStack string // the real agent's stack under load
	canStack  string // the real agent's canary stack
	ns        string // the real agent's namespace
	canNS     string
	template  string
	agents    []*simAgent
	subs      map[string]string // receiver name → subscription id
	l         ledger
	seq       int64
	seqMu     sync.Mutex
	started   time.Time
	stopped   time.Time

	producers sync.WaitGroup
	consumers sync.WaitGroup
}

func (ld *load) next() int64 {
	ld.seqMu.Lock()
	defer ld.seqMu.Unlock()
	ld.seq++
	return ld.seq
}

// newLoad creates the generator, its stacks and template, the simulated
// agents, the real agent's stacks and the webhook subscriptions.
func newLoad(t *testing.T, c *cluster, rcv *receiver, cfg loadConfig) *load {
	t.Helper()
	ld := &load{t: t, c: c, cfg: cfg, rcv: rcv, subs: map[string]string{}, ns: "chaos-" + randHex(4), canNS: "chaos-canary-" + randHex(4)}
	ld.l = ledger{objects: map[string]time.Time{}, events: map[string]string{}, orders: map[string]time.Time{},
		claims: map[string][]string{}, completes: map[string]int{}, status: map[string]map[string]int{}}
	admin := c.adminPAK

	// Subscriptions first, so every event of the run is delivered: "all"
	// takes every event type, "deploy" only deployment.* (two deliveries
	// per deployment event).
	for name, types := range map[string][]string{"all": {"*"}, "deploy": {"deployment.*"}} {
		var sub struct {
			ID string `json:"id"`
		}
		c.mustCall("POST", "/api/v1/webhooks", admin, map[string]any{"name": "chaos-" + name, "url": rcv.url(name),
			"auth_header": rcv.auth, "signing_secret": rcv.secret, "event_types": types, "max_retries": 100, "timeout_seconds": 10}, &sub)
		ld.subs[name] = sub.ID
	}

	var gen struct {
		Generator struct {
			ID string `json:"id"`
		} `json:"generator"`
		PAK string `json:"pak"`
	}
	c.mustCall("POST", "/api/v1/generators", admin, map[string]string{"name": "chaos-generator", "description": "chaos load"}, &gen)
	ld.genID, ld.genPAK = gen.Generator.ID, gen.PAK
	c.secrets = append(c.secrets, gen.PAK)
	for i := range cfg.stacks {
		var st struct {
			ID string `json:"id"`
		}
		c.mustCall("POST", "/api/v1/stacks", ld.genPAK, map[string]string{"name": fmt.Sprintf("chaos-sim-%d", i)}, &st)
		ld.stacks = append(ld.stacks, st.ID)
	}
	var tpl struct {
		ID string `json:"id"`
	}
	c.mustCall("POST", "/api/v1/templates", ld.genPAK, map[string]string{"name": "chaos-cm", "template_content": tplSource, "parameters_schema": tplSchema}, &tpl)
	ld.template = tpl.ID

	for i := range cfg.agents {
		var created struct {
			Agent struct {
				ID string `json:"id"`
			} `json:"agent"`
			InitialPAK string `json:"initial_pak"`
		}
		c.mustCall("POST", "/api/v1/agents", admin, map[string]string{"name": fmt.Sprintf("sim-%d", i), "cluster_name": "sim"}, &created)
		a := &simAgent{id: created.Agent.ID, pak: created.InitialPAK, held: map[string]string{}}
		c.secrets = append(c.secrets, a.pak)
		for k := range 2 {
			c.mustCall("POST", "/api/v1/agents/"+a.id+"/targets", admin, map[string]string{"stack_id": ld.stacks[(i+k)%cfg.stacks]}, nil)
		}
		ld.agents = append(ld.agents, a)
	}

	for _, s := range []*string{&ld.loadStack, &ld.canStack} {
		var st struct {
			ID string `json:"id"`
		}
		name := "chaos-real-load"
		if s == &ld.canStack {
			name = "chaos-real-canary"
		}
		c.mustCall("POST", "/api/v1/stacks", ld.genPAK, map[string]string{"name": name}, &st)
		*s = st.ID
		c.mustCall("POST", "/api/v1/agents/"+c.realAgentID+"/targets", admin, map[string]string{"stack_id": st.ID}, nil)
	}
	return ld
}

// start runs the producers and the simulated agents until their contexts end.
func (ld *load) start(producers, consumers context.Context) {
	ld.started = time.Now()
	ld.producers.Add(2)
	go ld.generate(producers)
	go ld.createOrders(producers)
	for _, a := range ld.agents {
		ld.consumers.Add(1)
		go ld.simulate(consumers, a)
	}
}

// every calls f at rate per second, each call in its own goroutine (at most
// 16 at once), so a slow answer does not slow the load down.
func every(ctx context.Context, rate float64, f func()) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // 16 calls hang: the broker is down; skip this tick
		}
		wg.Add(1)
		go func() { defer wg.Done(); defer func() { <-sem }(); f() }()
	}
}

func (ld *load) generate(ctx context.Context) {
	defer ld.producers.Done()
	every(ctx, ld.cfg.objectsPerS, func() {
		n := ld.next()
		switch {
		case n%8 == 0: // the real agent's load stack
			status, body, err := ld.c.call("POST", "/api/v1/stacks/"+ld.loadStack+"/deployment-objects", ld.genPAK,
				map[string]any{"yaml_content": fmt.Sprintf(loadYAML, ld.ns, n)})
			ld.l.count("create object", outcome(status, err))
			if id := objectID(status, body, false); id != "" {
				ld.l.mu.Lock()
				ld.l.objects[id] = time.Now()
				ld.l.lastLoad = max(ld.l.lastLoad, int(n))
				ld.l.mu.Unlock()
			}
		case n%4 == 0: // through the templating service
			status, body, err := ld.c.call("POST", "/api/v1/stacks/"+ld.stacks[int(n)%len(ld.stacks)]+"/deployment-objects/from-template", ld.genPAK,
				map[string]any{"template_id": ld.template, "parameters": map[string]any{"name": fmt.Sprintf("tpl-%d", n), "n": n}})
			ld.l.count("create object from template", outcome(status, err))
			if id := objectID(status, body, true); id != "" {
				ld.l.mu.Lock()
				ld.l.objects[id] = time.Now()
				ld.l.mu.Unlock()
			}
		default:
			status, body, err := ld.c.call("POST", "/api/v1/stacks/"+ld.stacks[int(n)%len(ld.stacks)]+"/deployment-objects", ld.genPAK,
				map[string]any{"yaml_content": fmt.Sprintf(simYAML, n, n)})
			ld.l.count("create object", outcome(status, err))
			if id := objectID(status, body, false); id != "" {
				ld.l.mu.Lock()
				ld.l.objects[id] = time.Now()
				ld.l.mu.Unlock()
			}
		}
	})
}

// objectID reads the id of a created deployment object (a create answers
// 201; from-template answers 200 with a one-element array).
func objectID(status int, body []byte, array bool) string {
	if status/100 != 2 {
		return ""
	}
	var one struct {
		ID string `json:"id"`
	}
	if array {
		var many []struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &many) != nil || len(many) != 1 {
			return ""
		}
		return many[0].ID
	}
	if json.Unmarshal(body, &one) != nil {
		return ""
	}
	return one.ID
}

func (ld *load) createOrders(ctx context.Context) {
	defer ld.producers.Done()
	every(ctx, ld.cfg.ordersPerS, func() {
		// Three eligible agents per order, so claims race.
		var ids []string
		for _, k := range rand.Perm(len(ld.agents))[:min(3, len(ld.agents))] {
			ids = append(ids, ld.agents[k].id)
		}
		if id := ld.createOrder("custom", ids, 0); id != "" {
			ld.l.mu.Lock()
			ld.l.orders[id] = time.Now()
			ld.l.mu.Unlock()
		}
	})
}

func (ld *load) createOrder(workType string, agentIDs []string, retries int) string {
	status, body, err := ld.c.call("POST", "/api/v1/work-orders", ld.c.adminPAK, map[string]any{
		"work_type": workType, "yaml_content": jobYAML, "max_retries": retries, "backoff_seconds": 1,
		"targeting": map[string]any{"agent_ids": agentIDs}})
	ld.l.count("create work order", outcome(status, err))
	if status != 201 {
		return ""
	}
	var wo struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &wo)
	return wo.ID
}

// simulate is one simulated agent: poll, report, claim, complete.
func (ld *load) simulate(ctx context.Context, a *simAgent) {
	defer ld.consumers.Done()
	for ctx.Err() == nil {
		ld.poll(a)
		ld.work(a)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(300+rand.IntN(400)) * time.Millisecond):
		}
	}
}

func (ld *load) poll(a *simAgent) {
	status, body, err := ld.c.call("GET", "/api/v1/agents/"+a.id+"/target-state", a.pak, nil)
	ld.l.count("target state", outcome(status, err))
	if status != 200 {
		return
	}
	var objs []struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &objs) != nil {
		return
	}
	for _, o := range objs {
		status, body, err := ld.c.call("POST", "/api/v1/agents/"+a.id+"/events", a.pak,
			map[string]any{"deployment_object_id": o.ID, "event_type": "DEPLOY", "status": "SUCCESS", "message": "applied by a simulated agent"})
		ld.l.count("agent event", outcome(status, err))
		if status != 201 {
			continue
		}
		var ev struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(body, &ev) == nil && ev.ID != "" {
			ld.l.mu.Lock()
			ld.l.events[ev.ID] = o.ID
			ld.l.mu.Unlock()
		}
	}
}

type orderView struct {
	ID         string  `json:"id"`
	WorkType   string  `json:"work_type"`
	Status     string  `json:"status"`
	ClaimedBy  *string `json:"claimed_by"`
	RetryCount int     `json:"retry_count"`
}

func (ld *load) work(a *simAgent) {
	for id, typ := range a.held {
		ld.complete(a, id, typ)
	}
	status, body, err := ld.c.call("GET", "/api/v1/agents/"+a.id+"/work-orders/pending", a.pak, nil)
	ld.l.count("pending work orders", outcome(status, err))
	if status != 200 {
		return
	}
	var pending []orderView
	if json.Unmarshal(body, &pending) != nil {
		return
	}
	for _, wo := range pending[:min(3, len(pending))] {
		status, _, err := ld.c.call("POST", "/api/v1/work-orders/"+wo.ID+"/claim", a.pak, map[string]string{"agent_id": a.id})
		ld.l.count("claim", outcome(status, err))
		claimed := status == 200
		if ambiguous(status, err) {
			// No answer: ask the broker (as the test's oracle) who holds it,
			// as a real agent recovers from a lost answer.
			claimed = ld.holds(a, wo.ID)
			if claimed {
				ld.l.count("claim", "no answer, but held (confirmed)")
			}
		}
		if claimed {
			ld.l.mu.Lock()
			ld.l.claims[wo.ID] = append(ld.l.claims[wo.ID], a.id)
			ld.l.mu.Unlock()
			a.held[wo.ID] = wo.WorkType
			ld.complete(a, wo.ID, wo.WorkType)
		}
	}
}

// holds asks, until it gets an answer, whether a holds the claim of order id.
func (ld *load) holds(a *simAgent, id string) bool {
	for range 120 {
		status, body, err := ld.c.call("GET", "/api/v1/work-orders/"+id, ld.c.adminPAK, nil)
		if status == 404 {
			return false
		}
		if status == 200 {
			var wo orderView
			if json.Unmarshal(body, &wo) == nil {
				return wo.Status == "CLAIMED" && wo.ClaimedBy != nil && *wo.ClaimedBy == a.id
			}
		}
		_ = err
		time.Sleep(500 * time.Millisecond)
	}
	ld.t.Errorf("could not learn who holds work order %s within a minute", id)
	return false
}

// complete finishes a held order: success, except the first attempt of a
// canary retry order, which fails retryably.
func (ld *load) complete(a *simAgent, id, typ string) {
	body := map[string]any{"success": true, "message": "done"}
	if typ == retryType && ld.firstAttempt(id) {
		body = map[string]any{"success": false, "message": "first attempt fails on purpose", "retryable": true}
	}
	status, _, err := ld.c.call("POST", "/api/v1/work-orders/"+id+"/complete", a.pak, body)
	ld.l.count("complete", outcome(status, err))
	switch {
	case status == 200 || status == 202:
		if status == 200 {
			ld.l.mu.Lock()
			ld.l.completes[id]++
			ld.l.mu.Unlock()
		}
		delete(a.held, id)
	case ambiguous(status, err):
		// Try again next round; a completion that did land answers 404/409.
	default:
		// 404/409: an earlier completion whose answer was lost did land
		// (the final checks verify the order's log entry).
		delete(a.held, id)
	}
}

// firstAttempt reports whether order id has been claimed only once so far.
func (ld *load) firstAttempt(id string) bool {
	ld.l.mu.Lock()
	defer ld.l.mu.Unlock()
	return len(ld.l.claims[id]) <= 1
}

// rates summarises what was acknowledged per second over the run. The
// caller holds ld.l.mu.
func (ld *load) rates() (secs float64, lines []string) {
	secs = ld.stopped.Sub(ld.started).Seconds()
	ops := make([]string, 0, len(ld.l.status))
	for op := range ld.l.status {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		total, ok := 0, 0
		var parts []string
		keys := make([]string, 0)
		for k := range ld.l.status[op] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			n := ld.l.status[op][k]
			total += n
			if strings.HasPrefix(k, "2") || k == "304" {
				ok += n
			}
			parts = append(parts, fmt.Sprintf("%s×%d", k, n))
		}
		lines = append(lines, fmt.Sprintf("| %s | %d | %.1f | %s |", op, total, float64(ok)/secs, strings.Join(parts, ", ")))
	}
	return secs, lines
}
