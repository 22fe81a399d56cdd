package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

const nsYAML = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: quickstart\n"

type object struct {
	ID               string `json:"id"`
	SequenceID       int64  `json:"sequence_id"`
	StackID          string `json:"stack_id"`
	IsDeletionMarker bool   `json:"is_deletion_marker"`
	YAMLChecksum     string `json:"yaml_checksum"`
}

// TestQuickStartFlow walks the Brokkr docs' quick start: agent, stack, target,
// deploy, target state, acknowledgement, update, stack deletion marker.
func TestQuickStartFlow(t *testing.T) {
	e := apitest.New(t)
	ag := e.CreateAgent("quickstart-agent", "local")
	stackID := e.CreateStack(e.AdminPAK, "quickstart-app")
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stackID})

	objID, seq := e.Deploy(e.AdminPAK, stackID, nsYAML)

	var objs []object
	r := e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil)
	r.JSON(t, &objs)
	if len(objs) != 1 || objs[0].ID != objID || objs[0].SequenceID != seq {
		t.Fatalf("target state = %+v, want object %s", objs, objID)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if r := e.Do("GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil, "If-None-Match", etag); r.Status != http.StatusNotModified {
		t.Fatalf("conditional GET: %d, want 304", r.Status)
	}

	// A FAILURE keeps the object; a SUCCESS hides it.
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objID, "event_type": "DEPLOY", "status": "FAILURE", "message": "boom"})
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 1 {
		t.Fatalf("after FAILURE: %d objects, want 1", len(objs))
	}
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objID, "event_type": "DEPLOY", "status": "SUCCESS"})
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 0 {
		t.Fatalf("after SUCCESS: %+v, want none", objs)
	}
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state?mode=full", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 1 {
		t.Fatalf("mode=full: %d objects, want 1", len(objs))
	}

	// Deleting the stack delivers a deletion marker until acknowledged.
	e.Must(204, "DELETE", "/api/v1/stacks/"+stackID, e.AdminPAK, nil)
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 1 || !objs[0].IsDeletionMarker || objs[0].StackID != stackID {
		t.Fatalf("after delete: %+v, want the deletion marker", objs)
	}
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/events", ag.PAK, map[string]any{
		"deployment_object_id": objs[0].ID, "event_type": "DEPLOY", "status": "SUCCESS"})
	e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil).JSON(t, &objs)
	if len(objs) != 0 {
		t.Fatalf("after acknowledging the marker: %+v", objs)
	}
}

// TestTargetStateLongPoll: a waiting agent learns of a new object within a
// second through Redis.
func TestTargetStateLongPoll(t *testing.T) {
	e := apitest.New(t)
	ag := e.CreateAgent("poller", "local")
	stackID := e.CreateStack(e.AdminPAK, "poll-stack")
	e.Must(201, "POST", "/api/v1/agents/"+ag.ID+"/labels", e.AdminPAK, "\"env:poll\"")
	e.Must(201, "POST", "/api/v1/stacks/"+stackID+"/labels", e.AdminPAK, "\"env:poll\"")

	first := e.Must(200, "GET", "/api/v1/agents/"+ag.ID+"/target-state", ag.PAK, nil)
	etag := first.Header.Get("ETag")

	type result struct {
		r   apitest.Response
		dur time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r := e.Do("GET", "/api/v1/agents/"+ag.ID+"/target-state?wait=20s", ag.PAK, nil, "If-None-Match", etag)
		done <- result{r, time.Since(start)}
	}()
	time.Sleep(300 * time.Millisecond)
	posted := time.Now()
	objID, _ := e.Deploy(e.AdminPAK, stackID, nsYAML)
	res := <-done
	if res.r.Status != 200 {
		t.Fatalf("long-poll status %d: %s", res.r.Status, res.r.Body)
	}
	var objs []object
	res.r.JSON(t, &objs)
	if len(objs) != 1 || objs[0].ID != objID {
		t.Fatalf("long-poll returned %+v", objs)
	}
	if lag := time.Since(posted); lag > time.Second {
		t.Fatalf("long-poll returned %v after the deployment, want < 1s", lag)
	}
	if res.dur < 300*time.Millisecond {
		t.Fatalf("long-poll returned before the change (%v)", res.dur)
	}
}
