package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// TestMutationsWriteOutboxEvents: each documented event lands in the outbox
// with the documented payload fields, and a failed mutation writes none.
func TestMutationsWriteOutboxEvents(t *testing.T) {
	e := apitest.New(t)
	ag := e.CreateAgent("outbox-agent", "c1")
	stackID := e.CreateStack(e.AdminPAK, "outbox-stack")
	objID, _ := e.Deploy(e.AdminPAK, stackID, nsYAML)
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stackID})
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objID, "event_type": "DEPLOY", "status": "FAILURE", "message": "boom"})
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objID, "event_type": "DEPLOY", "status": "SUCCESS"})
	e.Must(204, "DELETE", "/api/v1/stacks/"+stackID, e.AdminPAK, nil)
	e.Must(204, "DELETE", "/api/v1/agents/"+ag.ID, e.AdminPAK, nil)
	// A rejected mutation (duplicate stack name) must not leave an event.
	e.CreateStack(e.AdminPAK, "dup")
	e.Must(409, "POST", "/api/v1/stacks", e.AdminPAK, map[string]any{"name": "dup"})

	rows := []struct {
		Type    string `db:"event_type"`
		Payload []byte `db:"payload"`
	}{}
	if err := e.Store.DB().SelectContext(context.Background(), &rows,
		`SELECT event_type, payload FROM outbox_events ORDER BY created_at, event_type`); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"agent.registered":   {"agent_id", "name", "cluster_name", "status", "created_at"},
		"stack.created":      {"stack_id", "name", "description", "created_at"},
		"deployment.created": {"deployment_object_id", "stack_id", "sequence_id", "created_at"},
		"deployment.failed":  {"agent_event_id", "agent_id", "deployment_object_id", "status", "message", "error"},
		"deployment.applied": {"agent_event_id", "agent_id", "deployment_object_id", "status"},
		"stack.deleted":      {"stack_id", "deleted_at"},
		"agent.deregistered": {"agent_id", "deleted_at"},
	}
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.Type]++
		var env struct {
			ID        string         `json:"id"`
			EventType string         `json:"event_type"`
			Timestamp string         `json:"timestamp"`
			Data      map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.Payload, &env); err != nil {
			t.Fatal(err)
		}
		if env.ID == "" || env.EventType != r.Type || env.Timestamp == "" {
			t.Errorf("bad envelope %s", r.Payload)
		}
		for _, f := range want[r.Type] {
			if _, ok := env.Data[f]; !ok {
				t.Errorf("%s lacks data.%s: %s", r.Type, f, r.Payload)
			}
		}
	}
	for typ := range want {
		if seen[typ] == 0 {
			t.Errorf("no %s event in the outbox", typ)
		}
	}
	// Two stacks were created successfully; the 409 added nothing.
	if seen["stack.created"] != 2 {
		t.Errorf("stack.created events = %d, want 2 (the duplicate must not emit)", seen["stack.created"])
	}
}

// TestAgentEventTypes: a processed deletion marker announces
// deployment.deleted, a drift report deployment.drifted.
func TestAgentEventTypes(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ag := e.CreateAgent("ev-agent", "c1")
	stackID := e.CreateStack(e.AdminPAK, "ev-stack")
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stackID})
	objID, _ := e.Deploy(e.AdminPAK, stackID, nsYAML)
	report := func(obj, typ, status string) {
		e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
			"deployment_object_id": obj, "event_type": typ, "status": status})
	}
	report(objID, "DEPLOY", "SUCCESS")
	report(objID, "DRIFT", "SUCCESS")
	e.Must(204, "DELETE", "/api/v1/stacks/"+stackID, e.AdminPAK, nil)
	var objs []object
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 1 || !objs[0].IsDeletionMarker {
		t.Fatalf("target state %+v", objs)
	}
	report(objs[0].ID, "DEPLOY", "SUCCESS")

	var types []string
	if err := e.Store.DB().SelectContext(context.Background(), &types,
		`SELECT event_type FROM outbox_events WHERE event_type LIKE 'deployment.%' AND event_type <> 'deployment.created' ORDER BY created_at`); err != nil {
		t.Fatal(err)
	}
	want := []string{"deployment.applied", "deployment.drifted", "deployment.deleted"}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
}
