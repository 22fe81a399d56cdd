package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/rollouts"
	"github.com/brokkr-go/brokkr/pkg/app/stacks"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// TestRolloutOverHTTP drives a canary rollout through the API as clients
// and agents see it: agents read their target state over HTTP (the api's
// index, woken by the scheduler's change notifications) and report over
// HTTP; the scheduler's advance runs in-process on the same database and
// change hub. A failing canary halts the rollout, the other agents never
// receive the object, and a rollback restores the old YAML everywhere.
func TestRolloutOverHTTP(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ctx := context.Background()
	scheduler := rollouts.NewService(postgres.RolloutRepos(e.Store),
		stacks.NewService(postgres.StackRepos(e.Store), e.Changes), e.Changes)
	advance := func() {
		t.Helper()
		if _, err := scheduler.AdvanceAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st := e.CreateStack(e.AdminPAK, "rolled")
	var agents []apitest.Agent
	for i := range 5 {
		a := e.CreateAgent(fmt.Sprintf("ro-%d", i), "c")
		e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
		if i == 0 {
			e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"canary"`)
		}
		agents = append(agents, a)
	}
	v1ID, v1Seq := e.Deploy(e.AdminPAK, st, cmYAML("v1"))
	for _, a := range agents {
		wantObjects(t, targetState(e, a, ""), "before any policy", v1ID)
		ack(e, a, v1ID, "SUCCESS")
	}

	e.Must(200, "GET", v1+"/stacks/"+st+"/rollout-policy", e.AdminPAK, nil)
	bad := e.Do("PUT", v1+"/stacks/"+st+"/rollout-policy", e.AdminPAK, map[string]any{
		"strategy": "waves", "waves": []map[string]any{{"name": "canary", "percent": 10, "selector": map[string]any{"labels": []string{"canary"}}}}})
	wantError(t, bad, 422, "wave with selector and percent")
	if code := bad.Map(t)["code"]; code != "rollout_invalid_wave_selector" {
		t.Fatalf("code %v", code)
	}
	wantError(t, e.Do("PUT", v1+"/stacks/"+st+"/rollout-policy", e.AdminPAK, map[string]any{"strategy": "waves", "max_unavailable": "0%",
		"waves": []map[string]any{{"percent": 10}}}), 422, "max_unavailable 0%")
	var pol map[string]any
	e.Must(200, "PUT", v1+"/stacks/"+st+"/rollout-policy", e.AdminPAK, map[string]any{
		"strategy": "waves", "max_unavailable": "50%", "on_failure": "halt",
		"waves": []map[string]any{{"name": "canary", "selector": map[string]any{"labels": []string{"canary"}}}}}).JSON(t, &pol)
	if pol["max_unavailable"] != "50%" || pol["strategy"] != "waves" {
		t.Fatalf("stored policy %v", pol)
	}
	wantError(t, e.Do("GET", v1+"/stacks/"+st+"/rollout", e.AdminPAK, nil), 404, "no rollout yet")

	v2ID, _ := e.Deploy(e.AdminPAK, st, cmYAML("v2"))
	for _, a := range agents {
		wantObjects(t, targetState(e, a, ""), "v2 before any wave (v1 acknowledged)")
	}
	advance()
	wantObjects(t, targetState(e, agents[0], ""), "canary after its wave started", v2ID)
	for _, a := range agents[1:] {
		wantObjects(t, targetState(e, a, ""), "outside the canary wave")
	}
	ack(e, agents[0], v2ID, "FAILURE")
	advance()
	var status struct {
		State  string  `json:"state"`
		Reason *string `json:"reason"`
		Waves  []struct {
			Name   string         `json:"name"`
			Counts map[string]int `json:"counts"`
			Agents []struct {
				AgentID string  `json:"agent_id"`
				Phase   string  `json:"phase"`
				Reason  *string `json:"reason"`
			} `json:"agents"`
		} `json:"waves"`
	}
	e.Must(200, "GET", v1+"/stacks/"+st+"/rollout", e.AdminPAK, nil).JSON(t, &status)
	if status.State != "halted" || len(status.Waves) != 2 || status.Waves[0].Agents[0].Phase != "failed" ||
		status.Waves[0].Agents[0].Reason == nil || status.Waves[1].Counts["pending"] != 4 {
		t.Fatalf("status after the canary failed: %+v", status)
	}
	advance()
	for _, a := range agents[1:] {
		wantObjects(t, targetState(e, a, ""), "outside the canary wave, halted")
	}
	wantError(t, e.Do("POST", v1+"/stacks/"+st+"/rollout/pause", e.AdminPAK, nil), 409, "pausing a halted rollout")

	var rb struct {
		ID             string `json:"id"`
		SequenceID     int64  `json:"sequence_id"`
		YAMLContent    string `json:"yaml_content"`
		RolledBackFrom string `json:"rolled_back_from"`
	}
	e.Must(201, "POST", v1+"/stacks/"+st+"/rollback", e.AdminPAK, map[string]any{"to_sequence_id": v1Seq}).JSON(t, &rb)
	if rb.YAMLContent != cmYAML("v1") || rb.RolledBackFrom != v2ID || rb.SequenceID <= v1Seq {
		t.Fatalf("rollback object %+v", rb)
	}
	for _, a := range agents {
		wantObjects(t, targetState(e, a, ""), "after the rollback", rb.ID)
	}
	e.Must(200, "GET", v1+"/stacks/"+st+"/rollout", e.AdminPAK, nil).JSON(t, &status)
	if status.State != "rolled_back" {
		t.Fatalf("rollout %s after the rollback", status.State)
	}
	wantError(t, e.Do("POST", v1+"/stacks/"+st+"/rollback", e.AdminPAK, map[string]any{"to_sequence_id": v1Seq, "deployment_object_id": v1ID}),
		422, "both targets")
	wantError(t, e.Do("POST", v1+"/stacks/"+st+"/rollback", e.AdminPAK, map[string]any{"to_sequence_id": 999999}), 404, "unknown target")
}
