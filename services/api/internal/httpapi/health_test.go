package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

func TestDeploymentHealth(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a, b := e.CreateAgent("h-a", "c"), e.CreateAgent("h-b", "c")
	stack := e.CreateStack(e.AdminPAK, "h-stack")
	obj, _ := e.Deploy(e.AdminPAK, stack, nsYAML)
	for _, ag := range []apitest.Agent{a, b} {
		e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stack})
	}
	report := func(ag apitest.Agent, status string, summary any) apitest.Response {
		return e.Do("PATCH", "/api/v1/agents/"+ag.ID+"/health-status", ag.PAK, map[string]any{
			"deployment_objects": []map[string]any{{"id": obj, "status": status, "summary": summary,
				"checked_at": time.Now().UTC().Format(time.RFC3339Nano)}}})
	}
	summary := map[string]any{"pods_ready": 1, "pods_total": 2, "conditions": []string{"ImagePullBackOff"}}
	if r := report(a, "healthy", summary); r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	// The original's agent sent the summary as a JSON string: still an object here.
	s, _ := json.Marshal(summary)
	if r := report(b, "degraded", string(s)); r.Status != 200 {
		t.Fatalf("string summary: %d %s", r.Status, r.Body)
	}
	var view struct {
		Records []struct {
			AgentID string         `json:"agent_id"`
			Status  string         `json:"status"`
			Summary map[string]any `json:"summary"`
		} `json:"health_records"`
		Overall string `json:"overall_status"`
	}
	e.Must(200, "GET", "/api/v1/deployment-objects/"+obj+"/health", e.AdminPAK, nil).JSON(t, &view)
	if len(view.Records) != 2 || view.Overall != "degraded" || view.Records[0].Summary["pods_total"] != float64(2) {
		t.Fatalf("object health: %+v", view)
	}
	// Upsert, not append; and a transition to failing emits deployment.failed once.
	report(a, "failing", summary)
	report(a, "failing", summary)
	e.Must(200, "GET", "/api/v1/deployment-objects/"+obj+"/health", e.AdminPAK, nil).JSON(t, &view)
	if len(view.Records) != 2 || view.Overall != "failing" {
		t.Fatalf("after failing: %+v", view)
	}
	var failed int
	if err := e.Store.DB().Get(&failed, `SELECT count(*) FROM outbox_events WHERE event_type = 'deployment.failed'
		AND payload->'data'->>'reason' = 'health'`); err != nil {
		t.Fatal(err)
	}
	if failed != 1 {
		t.Fatalf("%d deployment.failed events, want 1 (only on the transition)", failed)
	}
	var sv struct {
		Overall string `json:"overall_status"`
		Objects []struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Healthy  int    `json:"healthy_agents"`
			Degraded int    `json:"degraded_agents"`
			Failing  int    `json:"failing_agents"`
		} `json:"deployment_objects"`
	}
	e.Must(200, "GET", "/api/v1/stacks/"+stack+"/health", e.AdminPAK, nil).JSON(t, &sv)
	if sv.Overall != "failing" || len(sv.Objects) != 1 || sv.Objects[0].Failing != 1 || sv.Objects[0].Degraded != 1 {
		t.Fatalf("stack health: %+v", sv)
	}
	// Bad input is rejected whole, naming the entry.
	if r := report(a, "fine", nil); r.Status != 400 || !strings.Contains(string(r.Body), "deployment_objects[0].status") {
		t.Fatalf("bad status: %d %s", r.Status, r.Body)
	}
	if r := report(a, "healthy", "[1,2]"); r.Status != 400 {
		t.Fatalf("non-object summary: %d %s", r.Status, r.Body)
	}
	r := e.Do("PATCH", "/api/v1/agents/"+a.ID+"/health-status", a.PAK, map[string]any{
		"deployment_objects": []map[string]any{{"id": "5b8f6ab3-5f77-4a33-9cb5-2c0b5e1f0000", "status": "healthy"}}})
	if r.Status != 422 {
		t.Fatalf("unknown object: %d %s", r.Status, r.Body)
	}
	// Another agent cannot report for a.
	if r := e.Do("PATCH", "/api/v1/agents/"+a.ID+"/health-status", b.PAK, map[string]any{"deployment_objects": []any{}}); r.Status != 403 {
		t.Fatalf("foreign report: %d", r.Status)
	}
	e.Must(404, "GET", "/api/v1/stacks/5b8f6ab3-5f77-4a33-9cb5-2c0b5e1f0000/health", e.AdminPAK, nil)
}

func TestDiagnosticsRoundTrip(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a, b := e.CreateAgent("d-a", "c"), e.CreateAgent("d-b", "c")
	stack := e.CreateStack(e.AdminPAK, "d-stack")
	obj, _ := e.Deploy(e.AdminPAK, stack, nsYAML)
	base := "/api/v1/deployment-objects/" + obj + "/diagnostics"

	if r := e.Do("POST", base, e.AdminPAK, map[string]any{"agent_id": a.ID, "retention_minutes": 0}); r.Status != 400 {
		t.Fatalf("retention 0: %d %s", r.Status, r.Body)
	}
	if r := e.Do("POST", base, e.AdminPAK, map[string]any{"agent_id": "5b8f6ab3-5f77-4a33-9cb5-2c0b5e1f0000"}); r.Status != 404 {
		t.Fatalf("unknown agent: %d %s", r.Status, r.Body)
	}
	var req struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		ExpiresAt string `json:"expires_at"`
	}
	e.Must(201, "POST", base, e.AdminPAK, map[string]any{"agent_id": a.ID, "requested_by": "oncall", "retention_minutes": 120}).JSON(t, &req)
	if req.Status != "pending" {
		t.Fatalf("request %+v", req)
	}
	var pending []map[string]any
	e.Must(200, "GET", "/api/v1/agents/"+a.ID+"/diagnostics/pending", a.PAK, nil).JSON(t, &pending)
	if len(pending) != 1 || pending[0]["id"] != req.ID {
		t.Fatalf("pending %v", pending)
	}
	e.Must(403, "GET", "/api/v1/diagnostics/"+req.ID, b.PAK, nil)
	e.Must(403, "POST", "/api/v1/diagnostics/"+req.ID+"/claim", b.PAK, nil)

	// Concurrent claims: exactly one wins, the rest get 409.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		lost int
	)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.Do("POST", "/api/v1/diagnostics/"+req.ID+"/claim", a.PAK, nil)
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case 200:
				wins++
			case 409:
				lost++
			}
		}()
	}
	wg.Wait()
	if wins != 1 || lost != 9 {
		t.Fatalf("claims: %d won, %d conflicted", wins, lost)
	}
	// Only the request's agent submits; the admin too gets 403.
	result := map[string]any{"pod_statuses": `[{"name":"p","phase":"Running"}]`, "events": `[]`,
		"log_tails": `{"p/c":"hello"}`, "collected_at": time.Now().UTC().Format(time.RFC3339)}
	e.Must(403, "POST", "/api/v1/diagnostics/"+req.ID+"/result", e.AdminPAK, result)
	if r := e.Do("POST", "/api/v1/diagnostics/"+req.ID+"/result", a.PAK, map[string]any{"events": "[]"}); r.Status != 400 {
		t.Fatalf("empty pod statuses: %d %s", r.Status, r.Body)
	}
	e.Must(201, "POST", "/api/v1/diagnostics/"+req.ID+"/result", a.PAK, result)
	e.Must(409, "POST", "/api/v1/diagnostics/"+req.ID+"/result", a.PAK, result)
	var view struct {
		Request struct {
			Status string `json:"status"`
		} `json:"request"`
		Result struct {
			PodStatuses string `json:"pod_statuses"`
			LogTails    string `json:"log_tails"`
		} `json:"result"`
	}
	e.Must(200, "GET", "/api/v1/diagnostics/"+req.ID, e.AdminPAK, nil).JSON(t, &view)
	if view.Request.Status != "completed" || !strings.Contains(view.Result.PodStatuses, "Running") || view.Result.LogTails == "" {
		t.Fatalf("view %+v", view)
	}
	// An agent that could not collect reports failure.
	var req2 struct {
		ID string `json:"id"`
	}
	e.Must(201, "POST", base, e.AdminPAK, map[string]any{"agent_id": a.ID}).JSON(t, &req2)
	e.Must(200, "POST", "/api/v1/diagnostics/"+req2.ID+"/claim", a.PAK, nil)
	e.Must(201, "POST", "/api/v1/diagnostics/"+req2.ID+"/result", a.PAK, map[string]any{"error": "forbidden: pods"})
	e.Must(200, "GET", "/api/v1/diagnostics/"+req2.ID, e.AdminPAK, nil).JSON(t, &view)
	if view.Request.Status != "failed" {
		t.Fatalf("failed collection: %+v", view)
	}
	// An expired request cannot be claimed.
	var req3 struct {
		ID string `json:"id"`
	}
	e.Must(201, "POST", base, e.AdminPAK, map[string]any{"agent_id": a.ID, "retention_minutes": 1}).JSON(t, &req3)
	if _, err := e.Store.DB().ExecContext(context.Background(), `UPDATE diagnostic_requests SET expires_at = now() - interval '1 second' WHERE id = $1`, req3.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.Do("POST", "/api/v1/diagnostics/"+req3.ID+"/claim", a.PAK, nil); r.Status != 409 || !strings.Contains(string(r.Body), "expired") {
		t.Fatalf("expired claim: %d %s", r.Status, r.Body)
	}
}
