package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
)

// TestOutboxReplayAfterRestartRecordsOnce: the agent's first run delivers
// its reports (an event, a health report, a work-order completion) and
// dies before removing them from its outbox; the next run replays them
// with their Idempotency-Keys against the real api. The broker records each
// report once and answers the replays with the stored responses, so the
// completion is not refused as "not claimed" and nothing is dropped. A
// control run without keys shows what the keys prevent.
func TestOutboxReplayAfterRestartRecordsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	b := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	b.call(t, http.MethodPost, "/agents", map[string]string{"name": "replay-agent", "cluster_name": "replay"}, &created)
	agentID := created.Agent.ID
	var st struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks", map[string]string{"name": "replay-stack"}, &st)
	b.call(t, http.MethodPost, "/agents/"+agentID.String()+"/targets", map[string]any{"agent_id": agentID, "stack_id": st.ID}, nil)
	var obj struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/stacks/"+st.ID.String()+"/deployment-objects",
		map[string]any{"yaml_content": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: replay\n"}, &obj)
	client, err := broker.New(b.url, secret.String(created.InitialPAK), broker.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	// run appends one of each report, "delivers" them as the agent's sender
	// does and leaves them on disk (the process died before removing them),
	// then opens the spool again (the restart) and replays it.
	run := func(t *testing.T, withKeys bool) (events int) {
		t.Helper()
		var wo struct {
			ID uuid.UUID `json:"id"`
		}
		b.call(t, http.MethodPost, "/work-orders", map[string]any{"work_type": "custom",
			"yaml_content": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: wo\n", "target_agent_ids": []uuid.UUID{agentID}}, &wo)
		if _, err := client.ClaimWorkOrder(ctx, wo.ID, agentID); err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("applied (keys=%v)", withKeys)
		before, err := client.Events(ctx, agentID)
		if err != nil {
			t.Fatal(err)
		}

		dir := t.TempDir()
		first, err := outbox.Open(outbox.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		recs := []struct {
			kind, method, path string
			body               any
		}{
			{"event", http.MethodPost, broker.EventsPath(agentID), broker.Event{AgentID: agentID, DeploymentObjectID: obj.ID,
				EventType: domainagent.EventTypeDeploy, Status: domainagent.EventSuccess, Message: &msg}},
			{"health", http.MethodPatch, "/api/v1/agents/" + agentID.String() + "/health-status", map[string]any{
				"deployment_objects": []map[string]any{{"id": obj.ID, "status": "failing", "summary": map[string]any{"pods_ready": 0}}}}},
			{"work_order_completion", http.MethodPost, broker.WorkOrderCompletePath(wo.ID),
				broker.WorkOrderCompletion{Success: true, Message: &msg}},
		}
		for _, r := range recs {
			rec, err := first.Append(r.kind, r.method, r.path, r.body)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Key == "" {
				t.Fatal("an appended record has no key")
			}
			key := rec.Key
			if !withKeys {
				key = ""
			}
			if _, err := client.Send(ctx, rec.Method, rec.Path, rec.Body, key); err != nil {
				t.Fatalf("first delivery of %s: %v", rec.Kind, err)
			}
		}

		second, err := outbox.Open(outbox.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if n, _, _ := second.Stats(); n != len(recs) {
			t.Fatalf("%d records survived the restart, want %d", n, len(recs))
		}
		err = second.Flush(ctx, outbox.Sender{
			Send: func(ctx context.Context, r outbox.Record) error {
				key := r.Key
				if !withKeys {
					key = ""
				}
				resp, err := client.Send(ctx, r.Method, r.Path, r.Body, key)
				if err == nil && withKeys && resp.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("replay of %s was not answered from the stored response", r.Kind)
				}
				return err
			},
			// What the agent's hook would say is beside the point here: the
			// keyed replay must not depend on it.
			Verify:    func(context.Context, outbox.Record) (bool, error) { return false, nil },
			Permanent: broker.Permanent,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n, _, _ := second.Stats(); n != 0 {
			t.Fatalf("%d records left after the replay", n)
		}
		after, err := client.Events(ctx, agentID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range after {
			if e.Message != nil && *e.Message == msg {
				events++
			}
		}
		if len(after)-len(before) != events {
			t.Fatalf("unexpected events: %d new, %d with this run's message", len(after)-len(before), events)
		}
		return events
	}

	if n := run(t, true); n != 1 {
		t.Fatalf("with keys: the replayed event was recorded %d times, want 1", n)
	}
	// Control: the same replay without keys records the event twice, which
	// is what the keys are for (the old Verify hook is off in this test).
	if n := run(t, false); n != 2 {
		t.Fatalf("control without keys: %d events, want 2 (the test would not notice duplicates otherwise)", n)
	}
	var log []json.RawMessage
	b.call(t, http.MethodGet, "/work-order-log", nil, &log)
	if len(log) != 2 {
		t.Fatalf("%d work-order log entries, want 2 (each completion recorded once)", len(log))
	}
}
