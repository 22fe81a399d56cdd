package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// startScheduler runs one work-order-scheduler process for the stack.
func (s *stack) startScheduler(t *testing.T) (*proc, string) {
	t.Helper()
	port := testsupport.FreePort(t)
	env := append(append([]string{}, s.env...),
		fmt.Sprintf("BROKKR__SCHEDULER__ADDR=127.0.0.1:%d", port),
		"BROKKR__SCHEDULER__MAINTENANCE_INTERVAL_SECONDS=1")
	p := start(t, env, "work-order-scheduler", "serve")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitReady(t, url, p)
	return p, url
}

func (s *stack) workOrder(id string) map[string]any {
	s.t.Helper()
	return s.must(200, "GET", "/api/v1/work-orders/"+id, "Bearer "+s.adminPAK, "")
}

// waitStatus polls the order until it has the status.
func (s *stack) waitStatus(id, status string, timeout time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w := s.workOrder(id)
		if w["status"] == status {
			return w
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("order %s is %v after %v, want %s", id, w["status"], timeout, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWorkOrderRetriesSurviveSchedulerKill follows a work order through the
// real processes: the agent claims and fails it, the api schedules a retry
// and arms its timer in Redis, the scheduler is SIGKILLed before the retry
// is due and started again later: the retry is still released, the order
// retried to exhaustion and logged. A clean SIGTERM exits 143.
func TestWorkOrderRetriesSurviveSchedulerKill(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := "Bearer " + s.adminPAK
	ag := s.must(201, "POST", "/api/v1/agents", admin, `{"name":"builder","cluster_name":"edge"}`)
	agentID := ag["agent"].(map[string]any)["id"].(string)
	agentPAK := "Bearer " + ag["initial_pak"].(string)
	s.must(201, "POST", "/api/v1/agents/"+agentID+"/labels", admin, `"builder"`)

	o := s.must(201, "POST", "/api/v1/work-orders", admin, `{"work_type":"custom","max_retries":2,"backoff_seconds":1,
		"yaml_content":"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n","targeting":{"labels":["builder"]}}`)
	id := o["id"].(string)
	sched, _ := s.startScheduler(t)

	fail := func() time.Time {
		t.Helper()
		pending := s.list("GET", "/api/v1/agents/"+agentID+"/work-orders/pending", agentPAK)
		if len(pending) != 1 || pending[0]["id"] != id {
			t.Fatalf("pending: %v", pending)
		}
		s.must(200, "POST", "/api/v1/work-orders/"+id+"/claim", agentPAK, `{"agent_id":"`+agentID+`"}`)
		code, body := s.call("POST", "/api/v1/work-orders/"+id+"/complete", agentPAK, `{"success":false,"message":"registry unavailable","retryable":true}`)
		if code != http.StatusAccepted {
			t.Fatalf("complete: %d %s", code, body)
		}
		var r struct {
			NextRetryAfter time.Time `json:"next_retry_after"`
		}
		_ = json.Unmarshal(body, &r)
		return r.NextRetryAfter
	}

	// Retry 1, released by the running scheduler.
	due := fail()
	s.waitStatus(id, "PENDING", 15*time.Second)
	if time.Now().Before(due) {
		t.Fatalf("released before it was due (%v)", due)
	}

	// Retry 2: kill -9 the scheduler while the retry waits.
	due = fail()
	if err := sched.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := sched.exitCode(t, 10*time.Second); code != -1 {
		t.Fatalf("killed scheduler exit code %d", code)
	}
	// Nothing releases it while no scheduler runs, even once it is due.
	for time.Now().Before(due.Add(time.Second)) {
		if st := s.workOrder(id)["status"]; st != "RETRY_PENDING" {
			t.Fatalf("status %v with no scheduler running", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sched, _ = s.startScheduler(t)
	s.waitStatus(id, "PENDING", 15*time.Second)

	// The third failure exhausts max_retries=2: 200 with the log entry.
	s.must(200, "POST", "/api/v1/work-orders/"+id+"/claim", agentPAK, "")
	l := s.must(200, "POST", "/api/v1/work-orders/"+id+"/complete", agentPAK, `{"success":false,"message":"registry unavailable"}`)
	if l["success"] != false || l["retries_attempted"] != float64(2) {
		t.Fatalf("log entry: %v", l)
	}
	if w := s.workOrder(id); w["status"] != "FAILED" || w["last_error"] != "registry unavailable" {
		t.Fatalf("finished order: %v", w)
	}

	if err := sched.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := sched.exitCode(t, 30*time.Second); code != 143 {
		t.Fatalf("exit %d after SIGTERM, want 143", code)
	}
}

// TestScheduledWorkOrdersThroughProcesses: a schedule created through the
// api fires ordinary work orders from the scheduler process, which an agent
// claims and completes; its runs list them.
func TestScheduledWorkOrdersThroughProcesses(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := "Bearer " + s.adminPAK
	ag := s.must(201, "POST", "/api/v1/agents", admin, `{"name":"nightly","cluster_name":"edge"}`)
	agentID := ag["agent"].(map[string]any)["id"].(string)
	agentPAK := "Bearer " + ag["initial_pak"].(string)
	sc := s.must(201, "POST", "/api/v1/work-order-schedules", admin, `{"name":"every-2s","cron_expression":"*/2 * * * * *",
		"concurrency_policy":"Forbid","work_type":"custom","yaml_content":"kind: Job\n",
		"targeting":{"agent_ids":["`+agentID+`"]}}`)
	scID := sc["id"].(string)
	s.startScheduler(t)

	var orderID string
	deadline := time.Now().Add(15 * time.Second)
	for orderID == "" {
		if p := s.list("GET", "/api/v1/agents/"+agentID+"/work-orders/pending", agentPAK); len(p) > 0 {
			if p[0]["schedule_id"] != scID || p[0]["scheduled_at"] == nil {
				t.Fatalf("scheduled order not stamped: %v", p[0])
			}
			orderID = p[0]["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule never fired")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.must(200, "POST", "/api/v1/work-orders/"+orderID+"/claim", agentPAK, "")
	s.must(200, "POST", "/api/v1/work-orders/"+orderID+"/complete", agentPAK, `{"success":true,"message":"done"}`)
	// Once it is finished (Forbid), a later window creates the next order.
	deadline = time.Now().Add(15 * time.Second)
	for {
		runs := s.list("GET", "/api/v1/work-order-schedules/"+scID+"/runs", admin)
		created := 0
		for _, r := range runs {
			if r["status"] == "created" {
				created++
			}
		}
		if created >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs: %v", runs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	logs := s.list("GET", "/api/v1/work-order-log?schedule_id="+scID, admin)
	if len(logs) != 1 || logs[0]["id"] != orderID || logs[0]["success"] != true {
		t.Fatalf("log of the schedule: %v", logs)
	}
}
