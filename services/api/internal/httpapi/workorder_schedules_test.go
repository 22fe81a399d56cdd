package httpapi_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

const schedules = "/api/v1/work-order-schedules"

func TestWorkOrderScheduleCRUD(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	ag := e.CreateAgent("sched-crud", "c")
	body := func(kv ...any) map[string]any {
		b := map[string]any{"name": "nightly", "cron_expression": "0 3 * * *", "work_type": "custom",
			"yaml_content": jobYAML("vacuum"), "targeting": map[string]any{"agent_ids": []string{ag.ID}}}
		for i := 0; i+1 < len(kv); i += 2 {
			b[kv[i].(string)] = kv[i+1]
		}
		return b
	}
	for name, c := range map[string]struct {
		body   map[string]any
		status int
	}{
		"blank name":    {body("name", ""), 400},
		"bad cron":      {body("cron_expression", "every day"), 400},
		"seven fields":  {body("cron_expression", "0 0 3 * * * *"), 400},
		"never fires":   {body("cron_expression", "0 0 30 2 *"), 400},
		"tz in cron":    {body("cron_expression", "CRON_TZ=UTC 0 3 * * *"), 400},
		"bad zone":      {body("time_zone", "Atlantis/Capital"), 400},
		"bad policy":    {body("concurrency_policy", "Queue"), 400},
		"no targeting":  {body("targeting", map[string]any{}), 400},
		"bad yaml":      {body("yaml_content", "a: [b"), 400},
		"unknown agent": {body("targeting", map[string]any{"agent_ids": []string{uuid.NewString()}}), 422},
		"wrong type":    {body("enabled", "yes"), 422},
	} {
		wantError(t, e.Do("POST", schedules, e.AdminPAK, c.body), c.status, name)
	}
	wantError(t, e.Do("POST", schedules, ag.PAK, `{"name": `), 403, "agent creating a schedule")

	before := time.Now().UTC()
	r := e.Must(201, "POST", schedules, e.AdminPAK, body("description", "VACUUM ANALYZE", "time_zone", "Europe/Berlin",
		"concurrency_policy", "replace", "max_retries", 1))
	sc := r.Map(t)
	wantKeys(t, sc, "schedule", "id", "created_at", "updated_at", "name", "description", "cron_expression", "time_zone",
		"enabled", "concurrency_policy", "work_type", "yaml_content", "max_retries", "backoff_seconds",
		"claim_timeout_seconds", "targeting", "last_scheduled_at", "next_run_at")
	id := wantUUID(t, sc["id"], "id")
	if sc["enabled"] != true || sc["concurrency_policy"] != "Replace" || sc["time_zone"] != "Europe/Berlin" ||
		sc["max_retries"] != float64(1) || sc["backoff_seconds"] != float64(60) || sc["last_scheduled_at"] != nil {
		t.Fatalf("created: %v", sc)
	}
	// 03:00 in Berlin is 01:00 or 02:00 UTC; the next one is within a day.
	next := wantTimestamp(t, sc["next_run_at"], "next_run_at")
	if h := next.Hour(); (h != 1 && h != 2) || next.Before(before) || next.After(before.Add(24*time.Hour)) {
		t.Fatalf("next_run_at %v", next)
	}
	wantError(t, e.Do("POST", schedules, e.AdminPAK, body()), 409, "duplicate name")
	e.Must(201, "POST", schedules, e.AdminPAK, body("name", "a-every-30s", "cron_expression", "*/30 * * * * *",
		"targeting", map[string]any{"labels": []string{"db"}}, "enabled", false))

	if got := names(t, e.Must(200, "GET", schedules, e.AdminPAK, nil)); fmt.Sprint(got) != "[a-every-30s nightly]" {
		t.Fatalf("list: %v", got)
	}

	// Partial update: only what is sent changes; null clears the description.
	upd := e.Must(200, "PUT", schedules+"/"+id, e.AdminPAK, map[string]any{"cron_expression": "*/10 * * * *", "description": nil}).Map(t)
	if upd["cron_expression"] != "*/10 * * * *" || upd["description"] != nil || upd["name"] != "nightly" || upd["concurrency_policy"] != "Replace" {
		t.Fatalf("updated: %v", upd)
	}
	if n := wantTimestamp(t, upd["next_run_at"], "next_run_at"); n.Minute()%10 != 0 || n.After(time.Now().Add(10*time.Minute)) {
		t.Fatalf("next_run_at after the update: %v", n)
	}
	wantError(t, e.Do("PUT", schedules+"/"+id, e.AdminPAK, map[string]any{"cron_expression": "nope"}), 400, "bad update")
	wantError(t, e.Do("PUT", schedules+"/"+id, e.AdminPAK, map[string]any{"name": "a-every-30s"}), 409, "rename onto another")
	if g := e.Must(200, "GET", schedules+"/"+id, e.AdminPAK, nil).Map(t); g["cron_expression"] != "*/10 * * * *" {
		t.Fatalf("a rejected update changed the schedule: %v", g)
	}
	wantError(t, e.Do("PUT", schedules+"/"+uuid.NewString(), e.AdminPAK, `{"name": `), 404, "404 before the body")

	// Disable / enable.
	if d := e.Must(200, "POST", schedules+"/"+id+"/disable", e.AdminPAK, nil).Map(t); d["enabled"] != false || d["next_run_at"] != nil {
		t.Fatalf("disabled: %v", d)
	}
	if d := e.Must(200, "POST", schedules+"/"+id+"/enable", e.AdminPAK, nil).Map(t); d["enabled"] != true || d["next_run_at"] == nil {
		t.Fatalf("enabled: %v", d)
	}

	// Runs: none yet; bad limit 400.
	if got := e.Must(200, "GET", schedules+"/"+id+"/runs", e.AdminPAK, nil); string(got.Body) != "[]" {
		t.Fatalf("runs: %s", got.Body)
	}
	wantError(t, e.Do("GET", schedules+"/"+id+"/runs?limit=x", e.AdminPAK, nil), 400, "bad limit")

	e.Must(204, "DELETE", schedules+"/"+id, e.AdminPAK, nil)
	wantError(t, e.Do("GET", schedules+"/"+id, e.AdminPAK, nil), 404, "deleted")
	wantError(t, e.Do("DELETE", schedules+"/"+id, e.AdminPAK, nil), 404, "deleted twice")

	var actions []string
	if err := e.Store.DB().SelectContext(context.Background(), &actions,
		`SELECT action FROM audit_logs WHERE resource_type = 'work_order_schedule' AND resource_id = $1 ORDER BY timestamp, action`, id); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(actions) != "[schedule.created schedule.updated schedule.disabled schedule.enabled schedule.deleted]" {
		t.Fatalf("audit: %v", actions)
	}
	var events []string
	if err := e.Store.DB().SelectContext(context.Background(), &events,
		`SELECT event_type FROM outbox_events WHERE payload->'data'->>'schedule_id' = $1 ORDER BY created_at`, id); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(events) != "[schedule.created schedule.updated schedule.updated schedule.updated schedule.deleted]" {
		t.Fatalf("events: %v", events)
	}
}

func names(t *testing.T, r apitest.Response) []string {
	t.Helper()
	var list []struct {
		Name string `json:"name"`
	}
	r.JSON(t, &list)
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}
