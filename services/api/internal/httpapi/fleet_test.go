package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// fleetRoleRows are the fleet routes of the role matrix: admin only, as
// 0.9.1 (docs/compatibility.md#fleet-record).
func fleetRoleRows() []roleRow {
	return []roleRow{
		{"GET", "/fleet", adminOnly, path("/fleet")},
		{"GET", "/agents/:id/fleet-status", adminOnly, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/fleet-status"}
		}},
		{"GET", "/admin/ws/connections", adminOnly, path("/admin/ws/connections")},
		// A plain GET (no Upgrade) passes the role check, then 426.
		{"GET", "/fleet/live", [numWho]int{426, 403, 403, 403, 403}, path("/fleet/live")},
	}
}

// The exact field set of 0.9.1's FleetAgentRecord, every one present
// (nullable ones as null).
var fleetRecordFields = []string{"agent_id", "name", "cluster_name", "status", "ws_connected", "connected_since",
	"last_heartbeat", "heartbeat_age_seconds", "pending_object_count", "pending_work_orders", "claimed_work_orders",
	"last_event_at", "seconds_since_last_event", "health_failing", "health_degraded", "k8s_reachable", "k8s_api_latency_ms"}

type fleetRecord struct {
	AgentID               string     `json:"agent_id"`
	Name                  string     `json:"name"`
	ClusterName           string     `json:"cluster_name"`
	Status                string     `json:"status"`
	WSConnected           bool       `json:"ws_connected"`
	ConnectedSince        *time.Time `json:"connected_since"`
	LastHeartbeat         *time.Time `json:"last_heartbeat"`
	HeartbeatAgeSeconds   *int64     `json:"heartbeat_age_seconds"`
	PendingObjectCount    int64      `json:"pending_object_count"`
	PendingWorkOrders     int64      `json:"pending_work_orders"`
	ClaimedWorkOrders     int64      `json:"claimed_work_orders"`
	LastEventAt           *time.Time `json:"last_event_at"`
	SecondsSinceLastEvent *int64     `json:"seconds_since_last_event"`
	HealthFailing         int64      `json:"health_failing"`
	HealthDegraded        int64      `json:"health_degraded"`
	K8sReachable          *bool      `json:"k8s_reachable"`
}

func fleetList(t *testing.T, e *apitest.Env, query string) map[string]fleetRecord {
	t.Helper()
	r := e.Must(200, "GET", v1+"/fleet"+query, e.AdminPAK, nil)
	var raw []map[string]json.RawMessage
	r.JSON(t, &raw)
	var recs []fleetRecord
	r.JSON(t, &recs)
	out := map[string]fleetRecord{}
	for i, m := range raw {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := slices.Clone(fleetRecordFields)
		sort.Strings(want)
		if !slices.Equal(keys, want) {
			t.Fatalf("record fields %v, want %v", keys, want)
		}
		out[recs[i].AgentID] = recs[i]
	}
	return out
}

// TestFleetRecordManyAgents builds a fleet of 40 agents through the API,
// gives a few of them each signal, and reads the record back.
func TestFleetRecordManyAgents(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	const n = 40
	agents := make([]apitest.Agent, n)
	for i := range agents {
		agents[i] = e.CreateAgent(fmt.Sprintf("fleet-%02d", i), "fleet-c")
	}
	busy, acked, worker, quiet := agents[0], agents[1], agents[2], agents[3]

	// busy: two targeted stacks with unacknowledged heads (the older object
	// of the first does not count), one failing and one degraded health.
	var objs []string
	for i := range 2 {
		st := e.CreateStack(e.AdminPAK, unique("fleet-st"))
		e.Deploy(e.AdminPAK, st, cmYAML(unique("old")))
		obj, _ := e.Deploy(e.AdminPAK, st, cmYAML(unique("head")))
		objs = append(objs, obj)
		e.Must(201, "POST", v1+"/agents/"+busy.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
		e.Must(201, "POST", v1+"/agents/"+acked.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
		_ = i
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	e.Must(200, "PATCH", v1+"/agents/"+busy.ID+"/health-status", busy.PAK, map[string]any{"deployment_objects": []map[string]any{
		{"id": objs[0], "status": "failing", "checked_at": now}, {"id": objs[1], "status": "degraded", "checked_at": now}}})
	// acked: acknowledged one of the two heads; its latest event is that.
	reportEvent(t, e, acked, map[string]any{"deployment_object_id": objs[0], "event_type": "DEPLOY", "status": "SUCCESS"})
	// worker: three pending orders it may claim (one by label), one claimed.
	e.Must(201, "POST", v1+"/agents/"+worker.ID+"/labels", e.AdminPAK, `"fleet-worker"`)
	for _, targeting := range []map[string]any{{"agent_ids": []string{worker.ID}}, {"agent_ids": []string{worker.ID}},
		{"labels": []string{"fleet-worker"}}, {"agent_ids": []string{worker.ID}}} {
		createOrder(e, map[string]any{"targeting": targeting})
	}
	var pending []struct {
		ID string `json:"id"`
	}
	e.Must(200, "GET", v1+"/agents/"+worker.ID+"/work-orders/pending", worker.PAK, nil).JSON(t, &pending)
	e.Must(200, "POST", v1+"/work-orders/"+pending[0].ID+"/claim", worker.PAK, map[string]string{"agent_id": worker.ID})

	recs := fleetList(t, e, "")
	if len(recs) != n {
		t.Fatalf("%d records, want %d", len(recs), n)
	}
	b := recs[busy.ID]
	if b.Name != "fleet-00" || b.ClusterName != "fleet-c" || b.Status != "ACTIVE" || b.PendingObjectCount != 2 ||
		b.HealthFailing != 1 || b.HealthDegraded != 1 || b.PendingWorkOrders != 0 || b.LastEventAt != nil {
		t.Errorf("busy %+v", b)
	}
	if a := recs[acked.ID]; a.PendingObjectCount != 1 || a.LastEventAt == nil || a.SecondsSinceLastEvent == nil ||
		*a.SecondsSinceLastEvent > 60 {
		t.Errorf("acked %+v", a)
	}
	if w := recs[worker.ID]; w.PendingWorkOrders != 3 || w.ClaimedWorkOrders != 1 {
		t.Errorf("worker pending %d claimed %d, want 3 and 1", w.PendingWorkOrders, w.ClaimedWorkOrders)
	}
	q := recs[quiet.ID]
	if q.WSConnected || q.ConnectedSince != nil || q.LastHeartbeat != nil || q.HeartbeatAgeSeconds != nil ||
		q.PendingObjectCount != 0 || q.K8sReachable != nil {
		t.Errorf("quiet %+v", q)
	}

	// A generator's view: the agents registered with it (a target alone
	// does not count); unknown: empty.
	g := e.CreateGenerator(unique("fleet-g"))
	gst := e.CreateStack(g.PAK, unique("fleet-gst"))
	e.Must(201, "POST", v1+"/agents/"+agents[3].ID+"/targets", e.AdminPAK, map[string]string{"stack_id": gst})
	for _, a := range []apitest.Agent{agents[5], agents[7]} {
		e.Must(201, "POST", v1+"/generators/"+g.ID+"/register", e.AdminPAK, map[string]string{"agent_id": a.ID})
	}
	if got := fleetList(t, e, "?pak_id="+g.ID); len(got) != 2 || got[agents[5].ID].Name != "fleet-05" || got[agents[7].ID].Name != "fleet-07" {
		t.Errorf("pak_id view %v", got)
	}
	if r := e.Must(200, "GET", v1+"/fleet?pak_id=00000000-0000-0000-0000-000000000001", e.AdminPAK, nil); string(r.Body) != "[]" {
		t.Errorf("unknown pak_id: %s", r.Body)
	}
	wantCode(t, e.Do("GET", v1+"/fleet?pak_id=nope", e.AdminPAK, nil), 400, "bad_request")
	wantCode(t, e.Do("GET", v1+"/fleet", busy.PAK, nil), 403, "admin_required")
	wantCode(t, e.Do("GET", v1+"/fleet", g.PAK, nil), 403, "admin_required")
}

// reportEvent reports an agent event; the create answers 200 or 201
// depending on the compatibility mode of creates, either is fine here.
func reportEvent(t *testing.T, e *apitest.Env, a apitest.Agent, body map[string]any) apitest.Response {
	t.Helper()
	r := e.Do("POST", v1+"/agents/"+a.ID+"/events", a.PAK, body)
	if r.Status != 200 && r.Status != 201 {
		t.Fatalf("report event: %d %s", r.Status, r.Body)
	}
	return r
}

func wantCode(t *testing.T, r apitest.Response, status int, code string) {
	t.Helper()
	wantError(t, r, status, code)
	if got, _ := r.Map(t)["code"].(string); got != code {
		t.Errorf("code %q, want %q (body %s)", got, code, r.Body)
	}
}

func TestFleetStatus(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("fs-a", "c")
	st := e.CreateStack(e.AdminPAK, unique("fs"))
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
	var last string
	for i := range 23 {
		obj, _ := e.Deploy(e.AdminPAK, st, cmYAML(unique("fs")))
		var ev struct {
			ID string `json:"id"`
		}
		reportEvent(t, e, a, map[string]any{
			"deployment_object_id": obj, "event_type": "DEPLOY", "status": "FAILURE", "message": fmt.Sprint(i)}).JSON(t, &ev)
		last = ev.ID
	}
	var out struct {
		Record       map[string]json.RawMessage `json:"record"`
		RecentEvents []struct {
			ID        string    `json:"id"`
			AgentID   string    `json:"agent_id"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"recent_events"`
	}
	e.Must(200, "GET", v1+"/agents/"+a.ID+"/fleet-status", e.AdminPAK, nil).JSON(t, &out)
	if len(out.Record) != len(fleetRecordFields) || string(out.Record["agent_id"]) != `"`+a.ID+`"` ||
		string(out.Record["pending_object_count"]) != "1" {
		t.Errorf("record %v", out.Record)
	}
	if len(out.RecentEvents) != 20 || out.RecentEvents[0].ID != last {
		t.Fatalf("%d recent events, first %+v; want 20, newest %s", len(out.RecentEvents), out.RecentEvents[0], last)
	}
	for i := 1; i < len(out.RecentEvents); i++ {
		if out.RecentEvents[i].CreatedAt.After(out.RecentEvents[i-1].CreatedAt) {
			t.Fatal("recent events not newest first")
		}
	}
	wantCode(t, e.Do("GET", v1+"/agents/00000000-0000-0000-0000-000000000001/fleet-status", e.AdminPAK, nil), 404, "agent_not_found")
	wantCode(t, e.Do("GET", v1+"/agents/"+a.ID+"/fleet-status", a.PAK, nil), 403, "admin_required")
	wantCode(t, e.Do("GET", v1+"/agents/nope/fleet-status", e.AdminPAK, nil), 400, "bad_request")
}

// An agent holding a target-state long-poll is connected: it shows in
// /admin/ws/connections and as ws_connected in its fleet record.
func TestFleetConnectedAgents(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a, idle := e.CreateAgent("conn-a", "c"), e.CreateAgent("conn-idle", "c")
	p := v1 + "/agents/" + a.ID + "/target-state"
	etag := e.Must(200, "GET", p, a.PAK, nil).Header.Get("ETag")

	type conns struct {
		ConnectedAgents int `json:"connected_agents"`
		Connections     []struct {
			AgentID        string    `json:"agent_id"`
			ConnectedSince time.Time `json:"connected_since"`
			MessagesIn     *int64    `json:"messages_in"`
			MessagesOut    *int64    `json:"messages_out"`
		} `json:"connections"`
		LiveSubscribers *int `json:"live_subscribers"`
	}
	var c conns
	e.Must(200, "GET", v1+"/admin/ws/connections", e.AdminPAK, nil).JSON(t, &c)
	if c.ConnectedAgents != 0 || len(c.Connections) != 0 || c.LiveSubscribers == nil {
		t.Fatalf("before any long-poll: %+v", c)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+p+"?wait=30s", nil)
		req.Header.Set("Authorization", "Bearer "+a.PAK)
		req.Header.Set("If-None-Match", etag)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.Must(200, "GET", v1+"/admin/ws/connections", e.AdminPAK, nil).JSON(t, &c)
		if c.ConnectedAgents == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c.ConnectedAgents != 1 || len(c.Connections) != 1 || c.Connections[0].AgentID != a.ID ||
		c.Connections[0].ConnectedSince.Before(started.Add(-time.Second)) || c.Connections[0].MessagesIn == nil {
		t.Fatalf("while long-polling: %+v", c)
	}
	recs := fleetList(t, e, "")
	if r := recs[a.ID]; !r.WSConnected || r.ConnectedSince == nil || !r.ConnectedSince.Equal(c.Connections[0].ConnectedSince) {
		t.Errorf("long-polling agent %+v", r)
	}
	if r := recs[idle.ID]; r.WSConnected || r.ConnectedSince != nil {
		t.Errorf("idle agent %+v", r)
	}
	cancel()
	<-done
}
