package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// order is the subset of WorkOrder JSON the tests read.
type order struct {
	ID             string     `json:"id"`
	Status         string     `json:"status"`
	ClaimedBy      *string    `json:"claimed_by"`
	ClaimedAt      *time.Time `json:"claimed_at"`
	RetryCount     int        `json:"retry_count"`
	MaxRetries     int        `json:"max_retries"`
	BackoffSeconds int        `json:"backoff_seconds"`
	NextRetryAfter *time.Time `json:"next_retry_after"`
	LastError      *string    `json:"last_error"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Progress       *struct {
		Message *string `json:"message"`
		Percent *int    `json:"percent"`
	} `json:"progress"`
}

type logEntry struct {
	ID               string  `json:"id"`
	WorkType         string  `json:"work_type"`
	Success          bool    `json:"success"`
	RetriesAttempted int     `json:"retries_attempted"`
	ResultMessage    *string `json:"result_message"`
	ClaimedBy        *string `json:"claimed_by"`
}

const wo = "/api/v1/work-orders"

func createOrder(e *apitest.Env, body map[string]any) order {
	e.T.Helper()
	if body["work_type"] == nil {
		body["work_type"] = "custom"
	}
	if body["yaml_content"] == nil {
		body["yaml_content"] = jobYAML(unique("job"))
	}
	var o order
	e.Must(201, "POST", wo, e.AdminPAK, body).JSON(e.T, &o)
	return o
}

func getOrder(e *apitest.Env, id string) order {
	e.T.Helper()
	var o order
	e.Must(200, "GET", wo+"/"+id, e.AdminPAK, nil).JSON(e.T, &o)
	return o
}

func pendingIDs(e *apitest.Env, ag apitest.Agent, query string) []string {
	e.T.Helper()
	return ids(e.T, e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/work-orders/pending"+query, ag.PAK, nil))
}

func TestWorkOrderCreateValidation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ag := e.CreateAgent("wo-val", "c")
	g := e.CreateGenerator("wo-val-g")
	base := func() map[string]any {
		return map[string]any{"work_type": "build", "yaml_content": jobYAML("j"),
			"targeting": map[string]any{"agent_ids": []string{ag.ID}}}
	}
	with := func(k string, v any) map[string]any { b := base(); b[k] = v; return b }

	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("targeting", map[string]any{})), 400,
		"At least one targeting method must be specified (agent_ids, labels, or annotations)", "no targeting")
	noTargeting := base()
	delete(noTargeting, "targeting")
	wantError(t, e.Do("POST", wo, e.AdminPAK, noTargeting), 400, "targeting absent")
	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("work_type", " ")), 400, "Work type cannot be empty", "blank type")
	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("yaml_content", "")), 400, "YAML content cannot be empty", "blank yaml")
	wantError(t, e.Do("POST", wo, e.AdminPAK, with("yaml_content", "a: [b")), 400, "bad yaml")
	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("max_retries", -1)), 400, "max_retries must be non-negative", "negative retries")
	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("backoff_seconds", 0)), 400, "backoff_seconds must be positive", "zero backoff")
	wantErrorMsg(t, e.Do("POST", wo, e.AdminPAK, with("claim_timeout_seconds", 0)), 400, "claim_timeout_seconds must be positive", "zero timeout")
	wantError(t, e.Do("POST", wo, e.AdminPAK, with("targeting", map[string]any{"labels": []string{"two words"}})), 400, "bad label")
	// An unknown agent is a 422 and nothing is created, no event emitted.
	wantError(t, e.Do("POST", wo, e.AdminPAK, with("targeting", map[string]any{"agent_ids": []string{uuid.NewString()}})), 422, "unknown agent")
	wantError(t, e.Do("POST", wo, e.AdminPAK, with("max_retries", "three")), 422, "wrong type")
	// Role before body (docs/compatibility.md#check-order).
	wantError(t, e.Do("POST", wo, ag.PAK, `{"work_type": `), 403, "agent creating")
	wantError(t, e.Do("POST", wo, g.PAK, `{"work_type": `), 403, "generator creating")

	var n int
	if err := e.Store.DB().GetContext(context.Background(), &n, `SELECT
		(SELECT count(*) FROM work_orders) + (SELECT count(*) FROM outbox_events WHERE event_type LIKE 'workorder.%')`); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("rejected creates left %d rows/events", n)
	}

	// Defaults and the legacy target_agent_ids field.
	o := createOrder(e, map[string]any{"target_agent_ids": []string{ag.ID}})
	if o.Status != "PENDING" || o.MaxRetries != 3 || o.BackoffSeconds != 60 || o.RetryCount != 0 || o.Progress != nil {
		t.Fatalf("defaults: %+v", o)
	}
	if got := pendingIDs(e, ag, ""); !contains(got, o.ID) {
		t.Fatalf("legacy target_agent_ids did not target the agent: %v", got)
	}
}

// TestWorkOrderEligibility: hard targets, labels and annotations are OR'ed;
// RETRY_PENDING, claimed orders and inactive agents are left out.
func TestWorkOrderEligibility(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("elig-a", "c") // label builder, annotation gpu=true
	b := e.CreateAgent("elig-b", "c") // label other, annotation gpu=false
	c := e.CreateAgent("elig-c", "c") // nothing
	e.Must(201, "POST", "/api/v1/agents/"+a.ID+"/labels", e.AdminPAK, `"builder"`)
	e.Must(201, "POST", "/api/v1/agents/"+a.ID+"/annotations", e.AdminPAK, map[string]string{"key": "gpu", "value": "true"})
	e.Must(201, "POST", "/api/v1/agents/"+b.ID+"/labels", e.AdminPAK, `"other"`)
	e.Must(201, "POST", "/api/v1/agents/"+b.ID+"/annotations", e.AdminPAK, map[string]string{"key": "gpu", "value": "false"})

	byTarget := createOrder(e, map[string]any{"targeting": map[string]any{"agent_ids": []string{c.ID}}})
	byLabel := createOrder(e, map[string]any{"targeting": map[string]any{"labels": []string{"builder", "nobody"}}})
	byAnno := createOrder(e, map[string]any{"work_type": "build", "targeting": map[string]any{"annotations": map[string]string{"gpu": "true"}}})
	mixed := createOrder(e, map[string]any{"targeting": map[string]any{"agent_ids": []string{c.ID}, "labels": []string{"other"}}})

	check := func(ag apitest.Agent, query string, want ...string) {
		t.Helper()
		got := pendingIDs(e, ag, query)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pending for %s%s = %v, want %v (oldest first)", ag.ID[:8], query, got, want)
		}
	}
	check(a, "", byLabel.ID, byAnno.ID)
	check(a, "?work_type=build", byAnno.ID)
	check(b, "", mixed.ID)
	check(c, "", byTarget.ID, mixed.ID)

	// Claims re-check eligibility: b may not take a's order.
	wantErrorMsg(t, e.Do("POST", wo+"/"+byLabel.ID+"/claim", b.PAK, map[string]string{"agent_id": b.ID}), 404,
		"Work order not found or not claimable", "ineligible claim")
	// An agent claims only for itself; the admin for anyone eligible.
	wantError(t, e.Do("POST", wo+"/"+byLabel.ID+"/claim", b.PAK, map[string]string{"agent_id": a.ID}), 403, "claim for another agent")
	e.Must(200, "POST", wo+"/"+mixed.ID+"/claim", e.AdminPAK, map[string]string{"agent_id": b.ID})
	check(c, "", byTarget.ID)

	// An INACTIVE agent sees and claims nothing
	// (docs/compatibility.md#agent-status-on-create).
	e.Must(200, "PUT", "/api/v1/agents/"+c.ID, e.AdminPAK, map[string]string{"status": "INACTIVE"})
	check(c, "")
	wantError(t, e.Do("POST", wo+"/"+byTarget.ID+"/claim", c.PAK, nil), 404, "inactive claim")

	// Pending for an unknown agent is a 404; another agent's list a 403.
	wantError(t, e.Do("GET", "/api/v1/agents/"+uuid.NewString()+"/work-orders/pending", e.AdminPAK, nil), 404, "unknown agent")
	wantError(t, e.Do("GET", "/api/v1/agents/"+a.ID+"/work-orders/pending", b.PAK, nil), 403, "foreign list")
}

func TestWorkOrderLifecycle(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("life-a", "c")
	b := e.CreateAgent("life-b", "c")
	for _, ag := range []apitest.Agent{a, b} {
		e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/labels", e.AdminPAK, `"pool"`)
	}
	o := createOrder(e, map[string]any{"work_type": "build", "targeting": map[string]any{"labels": []string{"pool"}}})

	// Claim without a body: an agent claims for itself.
	var claimed order
	e.Must(200, "POST", wo+"/"+o.ID+"/claim", a.PAK, nil).JSON(t, &claimed)
	if claimed.Status != "CLAIMED" || claimed.ClaimedBy == nil || *claimed.ClaimedBy != a.ID || claimed.ClaimedAt == nil {
		t.Fatalf("claimed: %+v", claimed)
	}
	wantErrorMsg(t, e.Do("POST", wo+"/"+o.ID+"/claim", b.PAK, nil), 404, "Work order not found or not claimable", "second claim")
	if got := pendingIDs(e, b, ""); len(got) != 0 {
		t.Fatalf("a claimed order is still pending: %v", got)
	}

	// Progress: only the claimer; shows in GET.
	var p order
	e.Must(200, "POST", wo+"/"+o.ID+"/progress", a.PAK, map[string]any{"message": "step 2/5", "percent": 40}).JSON(t, &p)
	if p.Progress == nil || *p.Progress.Message != "step 2/5" || *p.Progress.Percent != 40 {
		t.Fatalf("progress: %+v", p.Progress)
	}
	if g := getOrder(e, o.ID); g.Progress == nil || *g.Progress.Percent != 40 {
		t.Fatalf("progress not visible in GET: %+v", g)
	}
	wantError(t, e.Do("POST", wo+"/"+o.ID+"/progress", b.PAK, map[string]any{"percent": 50}), 409, "foreign progress")
	wantError(t, e.Do("POST", wo+"/"+o.ID+"/progress", a.PAK, map[string]any{"percent": 101}), 400, "percent range")
	wantError(t, e.Do("POST", wo+"/"+o.ID+"/progress", e.AdminPAK, map[string]any{"percent": 1}), 403, "admin progress")

	// Only the claimer completes (409 for another agent,
	// docs/work-orders.md#api).
	wantErrorMsg(t, e.Do("POST", wo+"/"+o.ID+"/complete", b.PAK, map[string]any{"success": true}), 409,
		"Work order is not claimed by this agent", "foreign complete")
	wantError(t, e.Do("POST", wo+"/"+o.ID+"/complete", a.PAK, map[string]any{"message": "x"}), 422, "missing success")
	var l logEntry
	e.Must(200, "POST", wo+"/"+o.ID+"/complete", a.PAK, map[string]any{"success": true, "message": "sha256:abc"}).JSON(t, &l)
	if l.ID != o.ID || !l.Success || l.ResultMessage == nil || *l.ResultMessage != "sha256:abc" || l.ClaimedBy == nil || *l.ClaimedBy != a.ID {
		t.Fatalf("log entry: %+v", l)
	}
	// Finished: gone from the active list, GET synthesises COMPLETED,
	// completing again is 404, the log has it.
	if got := ids(t, e.Must(200, "GET", wo, e.AdminPAK, nil)); contains(got, o.ID) {
		t.Fatal("finished order still listed")
	}
	if g := getOrder(e, o.ID); g.Status != "COMPLETED" || g.MaxRetries != 0 {
		t.Fatalf("GET after completion: %+v", g)
	}
	wantErrorMsg(t, e.Do("POST", wo+"/"+o.ID+"/complete", a.PAK, map[string]any{"success": true}), 404, "Work order not found", "complete twice")
	wantErrorMsg(t, e.Do("DELETE", wo+"/"+o.ID, e.AdminPAK, nil), 404, "Work order not found", "cancel finished")
	e.Must(200, "GET", "/api/v1/work-order-log/"+o.ID, e.AdminPAK, nil)
	wantErrorMsg(t, e.Do("GET", "/api/v1/work-order-log/"+uuid.NewString(), e.AdminPAK, nil), 404, "Work order log entry not found", "unknown log")
	wantErrorMsg(t, e.Do("GET", wo+"/"+uuid.NewString(), e.AdminPAK, nil), 404, "Work order not found", "unknown order")

	// The log's filters.
	f := createOrder(e, map[string]any{"max_retries": 0, "targeting": map[string]any{"labels": []string{"pool"}}})
	e.Must(200, "POST", wo+"/"+f.ID+"/claim", b.PAK, nil)
	e.Must(200, "POST", wo+"/"+f.ID+"/complete", b.PAK, map[string]any{"success": false})
	for q, want := range map[string][]string{
		"":                                   {f.ID, o.ID},
		"?success=true":                      {o.ID},
		"?success=false":                     {f.ID},
		"?work_type=build":                   {o.ID},
		"?agent_id=" + b.ID:                  {f.ID},
		"?limit=1":                           {f.ID},
		"?work_type=custom&success=false":    {f.ID},
		"?agent_id=" + uuid.NewString() + "": {},
	} {
		if got := ids(t, e.Must(200, "GET", "/api/v1/work-order-log"+q, e.AdminPAK, nil)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("log%s = %v, want %v", q, got, want)
		}
	}
	for _, q := range []string{"?success=maybe", "?agent_id=nope", "?limit=-1", "?limit=x"} {
		wantError(t, e.Do("GET", "/api/v1/work-order-log"+q, e.AdminPAK, nil), 400, "log"+q)
	}
	if g := getOrder(e, f.ID); g.Status != "FAILED" || g.LastError == nil || *g.LastError != "Unknown error" {
		t.Fatalf("failed order read back: %+v", g)
	}

	// Cancel: 204, then it is gone.
	c := createOrder(e, map[string]any{"targeting": map[string]any{"labels": []string{"pool"}}})
	e.Must(204, "DELETE", wo+"/"+c.ID, e.AdminPAK, nil)
	wantError(t, e.Do("GET", wo+"/"+c.ID, e.AdminPAK, nil), 404, "cancelled")

	// Events and audit entries of the whole story, with the real actors.
	events := map[string]int{}
	rows := []struct {
		Type    string `db:"event_type"`
		Payload []byte `db:"payload"`
	}{}
	if err := e.Store.DB().SelectContext(context.Background(), &rows,
		`SELECT event_type, payload FROM outbox_events WHERE event_type LIKE 'workorder.%'`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		events[r.Type]++
		var env struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(r.Payload, &env)
		if r.Type == "workorder.completed" {
			wantKeysPresent(t, env.Data, "work_order_log_id", "work_type", "success", "result_message", "agent_id", "completed_at")
		}
		if r.Type == "workorder.claimed" {
			wantKeysPresent(t, env.Data, "work_order_id", "work_type", "agent_id", "claimed_at")
		}
	}
	if events["workorder.created"] != 3 || events["workorder.claimed"] != 2 || events["workorder.completed"] != 1 ||
		events["workorder.failed"] != 1 || events["workorder.cancelled"] != 1 {
		t.Errorf("events: %v", events)
	}
	var audits []struct {
		Action    string  `db:"action"`
		ActorType string  `db:"actor_type"`
		ActorID   *string `db:"actor_id"`
	}
	if err := e.Store.DB().SelectContext(context.Background(), &audits,
		`SELECT action, actor_type, actor_id::text AS actor_id FROM audit_logs WHERE resource_type = 'work_order' AND resource_id = $1 ORDER BY timestamp`, o.ID); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, a := range audits {
		got = append(got, a.Action+"/"+a.ActorType)
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"workorder.created/admin", "workorder.claimed/agent", "workorder.completed/agent"}) {
		t.Errorf("audit trail: %v", got)
	}
}

func wantKeysPresent(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("missing %q in %v", k, m)
		}
	}
}

// TestWorkOrderFailurePaths: retryable failures schedule retry n after
// 2^n × backoff (RETRY_PENDING, not listed as pending, a release task on
// the queue); non-retryable and exhausted failures go to the log.
func TestWorkOrderFailurePaths(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("fail-a", "c")
	target := map[string]any{"agent_ids": []string{a.ID}}

	o := createOrder(e, map[string]any{"max_retries": 2, "backoff_seconds": 30, "targeting": target})
	e.Must(200, "POST", wo+"/"+o.ID+"/claim", a.PAK, nil)
	before := time.Now()
	r := e.Must(202, "POST", wo+"/"+o.ID+"/complete", a.PAK, map[string]any{"success": false, "message": "registry timeout"})
	var rs struct {
		Status         string    `json:"status"`
		RetryCount     int       `json:"retry_count"`
		NextRetryAfter time.Time `json:"next_retry_after"`
	}
	r.JSON(t, &rs)
	if rs.Status != "retry_scheduled" || rs.RetryCount != 1 {
		t.Fatalf("202 body: %s", r.Body)
	}
	g := getOrder(e, o.ID)
	if g.Status != "RETRY_PENDING" || g.RetryCount != 1 || g.ClaimedBy != nil || g.LastError == nil || *g.LastError != "registry timeout" {
		t.Fatalf("after a retryable failure: %+v", g)
	}
	// First retry waits 2 × base (docs/work-orders.md#backoff), by the
	// database clock.
	if wait := g.NextRetryAfter.Sub(before); wait < 59*time.Second || wait > 62*time.Second {
		t.Fatalf("next_retry_after is %v after the failure, want about 60s", wait)
	}
	if got := pendingIDs(e, a, ""); len(got) != 0 {
		t.Fatalf("RETRY_PENDING must not be pending: %v", got)
	}
	wantError(t, e.Do("POST", wo+"/"+o.ID+"/claim", a.PAK, nil), 404, "claim while RETRY_PENDING")
	wantErrorMsg(t, e.Do("POST", wo+"/"+o.ID+"/complete", e.AdminPAK, map[string]any{"success": true}), 409,
		"Work order is not claimed", "admin completing RETRY_PENDING")
	// api armed a release timer on its queue, due at next_retry_after.
	rdb := apitest.Redis(t)
	due, err := rdb.ZRangeWithScores(context.Background(), "asynq:{"+e.Queue+"}:scheduled", 0, -1).Result()
	if err != nil || len(due) != 1 {
		t.Fatalf("scheduled release tasks: %v %v", due, err)
	}
	if at := time.Unix(int64(due[0].Score), 0); at.Sub(*g.NextRetryAfter).Abs() > time.Second {
		t.Fatalf("release task due %v, order due %v", at, g.NextRetryAfter)
	}

	// Non-retryable: straight to the log, whatever retries are left.
	n := createOrder(e, map[string]any{"max_retries": 5, "targeting": target})
	e.Must(200, "POST", wo+"/"+n.ID+"/claim", a.PAK, nil)
	var l logEntry
	e.Must(200, "POST", wo+"/"+n.ID+"/complete", a.PAK, map[string]any{"success": false, "retryable": false,
		"message": "Unknown work type"}).JSON(t, &l)
	if l.Success || l.RetriesAttempted != 0 || *l.ResultMessage != "Unknown work type" {
		t.Fatalf("non-retryable: %+v", l)
	}

	// The admin may complete any claimed order.
	m := createOrder(e, map[string]any{"targeting": target})
	e.Must(200, "POST", wo+"/"+m.ID+"/claim", e.AdminPAK, map[string]string{"agent_id": a.ID})
	e.Must(200, "POST", wo+"/"+m.ID+"/complete", e.AdminPAK, map[string]any{"success": true})
	// A PENDING order cannot be completed by anyone.
	p := createOrder(e, map[string]any{"targeting": target})
	wantError(t, e.Do("POST", wo+"/"+p.ID+"/complete", e.AdminPAK, map[string]any{"success": true}), 409, "complete PENDING")
	wantError(t, e.Do("POST", wo+"/"+p.ID+"/complete", a.PAK, map[string]any{"success": true}), 409, "agent completes PENDING")
}

// TestClaimFiftyAgentsOneWinner: 50 agents claim one order at the same
// moment through the API; exactly one gets 200, the other 49 get 404.
func TestClaimFiftyAgentsOneWinner(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	agents := make([]apitest.Agent, 50)
	for i := range agents {
		agents[i] = e.CreateAgent(fmt.Sprintf("race-%02d", i), "c")
		e.Must(201, "POST", "/api/v1/agents/"+agents[i].ID+"/labels", e.AdminPAK, `"race"`)
	}
	for round := range 3 {
		o := createOrder(e, map[string]any{"targeting": map[string]any{"labels": []string{"race"}}})
		start := make(chan struct{})
		statuses := make([]int, len(agents))
		var wg sync.WaitGroup
		for i, ag := range agents {
			wg.Go(func() {
				<-start
				statuses[i] = e.Do("POST", wo+"/"+o.ID+"/claim", ag.PAK, map[string]string{"agent_id": ag.ID}).Status
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		winner := ""
		for i, s := range statuses {
			switch s {
			case 200:
				winners++
				winner = agents[i].ID
			case 404:
			default:
				t.Fatalf("round %d: claim answered %d", round, s)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", round, winners)
		}
		if g := getOrder(e, o.ID); g.ClaimedBy == nil || *g.ClaimedBy != winner {
			t.Fatalf("round %d: order claimed by %v, winner was %s", round, g.ClaimedBy, winner)
		}
	}
	var claims int
	_ = e.Store.DB().GetContext(context.Background(), &claims, `SELECT count(*) FROM outbox_events WHERE event_type = 'workorder.claimed'`)
	if claims != 3 {
		t.Fatalf("%d workorder.claimed events, want 3", claims)
	}
}

// TestClaimManyOrdersManyAgents: 20 agents drain 500 orders through the
// API, each claiming at random from its pending list and completing what it
// won: no order is claimed twice, none is lost, every one ends in the log.
func TestClaimManyOrdersManyAgents(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("long")
	}
	const nOrders, nAgents = 500, 20
	e := apitest.New(t)
	agents := make([]apitest.Agent, nAgents)
	for i := range agents {
		agents[i] = e.CreateAgent(fmt.Sprintf("drain-%02d", i), "c")
		e.Must(201, "POST", "/api/v1/agents/"+agents[i].ID+"/labels", e.AdminPAK, `"drain"`)
	}
	// Create through the API, a few at a time.
	created := make([]string, nOrders)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range created {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := e.Do("POST", wo, e.AdminPAK, map[string]any{"work_type": "custom", "yaml_content": jobYAML(fmt.Sprint("j", i)),
				"targeting": map[string]any{"labels": []string{"drain"}}})
			var o order
			_ = json.Unmarshal(r.Body, &o)
			created[i] = o.ID
		})
	}
	wg.Wait()

	var mu sync.Mutex
	wonBy := map[string][]string{} // order → agents that got 200
	errs := make(chan error, nAgents)
	for _, ag := range agents {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
			for {
				var pending []order
				r := e.Do("GET", "/api/v1/agents/"+ag.ID+"/work-orders/pending", ag.PAK, nil)
				if err := json.Unmarshal(r.Body, &pending); err != nil || r.Status != 200 {
					errs <- fmt.Errorf("pending: %d %s", r.Status, r.Body)
					return
				}
				if len(pending) == 0 {
					return
				}
				// Try a handful at random per listing, as competing agents do.
				for _, k := range rng.Perm(len(pending))[:min(5, len(pending))] {
					id := pending[k].ID
					switch s := e.Do("POST", wo+"/"+id+"/claim", ag.PAK, nil).Status; s {
					case 200:
						mu.Lock()
						wonBy[id] = append(wonBy[id], ag.ID)
						mu.Unlock()
						if s := e.Do("POST", wo+"/"+id+"/complete", ag.PAK, map[string]any{"success": true}).Status; s != 200 {
							errs <- fmt.Errorf("complete %s: %d", id, s)
							return
						}
					case 404:
					default:
						errs <- fmt.Errorf("claim %s: %d", id, s)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, id := range created {
		if len(wonBy[id]) != 1 {
			t.Fatalf("order %s claimed by %v", id, wonBy[id])
		}
	}
	if len(wonBy) != nOrders {
		t.Fatalf("%d orders claimed, want %d", len(wonBy), nOrders)
	}
	var active, logged, claimedEvents int
	db := e.Store.DB()
	_ = db.GetContext(context.Background(), &active, `SELECT count(*) FROM work_orders`)
	_ = db.GetContext(context.Background(), &logged, `SELECT count(*) FROM work_order_log WHERE success`)
	_ = db.GetContext(context.Background(), &claimedEvents, `SELECT count(*) FROM outbox_events WHERE event_type = 'workorder.claimed'`)
	if active != 0 || logged != nOrders || claimedEvents != nOrders {
		t.Fatalf("active %d, logged %d, claim events %d; want 0, %d, %d", active, logged, claimedEvents, nOrders, nOrders)
	}
	// The log agrees with who won each claim.
	var rows []struct {
		ID        string `db:"id"`
		ClaimedBy string `db:"claimed_by"`
	}
	_ = db.SelectContext(context.Background(), &rows, `SELECT id::text AS id, claimed_by::text AS claimed_by FROM work_order_log`)
	for _, r := range rows {
		if wonBy[r.ID][0] != r.ClaimedBy {
			t.Fatalf("log says %s ran %s, the API said %s", r.ClaimedBy, r.ID, wonBy[r.ID][0])
		}
	}
	// Work spread over the agents (not a correctness property, a sanity one).
	per := map[string]int{}
	for _, w := range wonBy {
		per[w[0]]++
	}
	counts := []int{}
	for _, n := range per {
		counts = append(counts, n)
	}
	sort.Ints(counts)
	t.Logf("claims per agent: %v", counts)
}

func TestWorkOrderListFilters(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("list-a", "c")
	target := map[string]any{"agent_ids": []string{a.ID}}
	b1 := createOrder(e, map[string]any{"work_type": "build", "targeting": target})
	c1 := createOrder(e, map[string]any{"work_type": "custom", "targeting": target})
	c2 := createOrder(e, map[string]any{"work_type": "custom", "targeting": target})
	e.Must(200, "POST", wo+"/"+c1.ID+"/claim", a.PAK, nil)
	for q, want := range map[string][]string{
		"":                                 {c2.ID, c1.ID, b1.ID}, // newest first
		"?status=PENDING":                  {c2.ID, b1.ID},
		"?status=CLAIMED":                  {c1.ID},
		"?work_type=custom":                {c2.ID, c1.ID},
		"?work_type=custom&status=PENDING": {c2.ID},
		"?status=RETRY_PENDING":            {},
	} {
		if got := ids(t, e.Must(200, "GET", wo+q, e.AdminPAK, nil)); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("list%s = %v, want %v", q, got, want)
		}
	}
	wantError(t, e.Do("GET", wo+"?schedule_id=x", e.AdminPAK, nil), 400, "bad schedule_id")
	wantError(t, e.Do("GET", wo, a.PAK, nil), http.StatusForbidden, "agent listing")
}
