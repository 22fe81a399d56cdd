package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// objectIDs returns the ids of objs in order.
func objectIDs(objs []object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

// wantObjects asserts the target state is exactly want, in order.
func wantObjects(t *testing.T, got []object, ctx string, want ...string) {
	t.Helper()
	ids := objectIDs(got)
	if len(ids) != len(want) {
		t.Fatalf("%s: target state %v, want %v", ctx, ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("%s: target state %v, want %v", ctx, ids, want)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].SequenceID >= got[i].SequenceID {
			t.Fatalf("%s: not ascending by sequence_id: %+v", ctx, got)
		}
	}
}

func TestTargetStateAssociationByLabel(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("by-label", "c")
	match := e.CreateStack(e.AdminPAK, "label-match")
	other := e.CreateStack(e.AdminPAK, "label-other")
	plain := e.CreateStack(e.AdminPAK, "label-none")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"env:prod"`)
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"team:web"`)
	e.Must(201, "POST", v1+"/stacks/"+match+"/labels", e.AdminPAK, `"env:prod"`)
	e.Must(201, "POST", v1+"/stacks/"+match+"/labels", e.AdminPAK, `"extra"`)
	e.Must(201, "POST", v1+"/stacks/"+other+"/labels", e.AdminPAK, `"env:dev"`)
	obj, _ := e.Deploy(e.AdminPAK, match, cmYAML("match"))
	e.Deploy(e.AdminPAK, other, cmYAML("other"))
	e.Deploy(e.AdminPAK, plain, cmYAML("plain"))

	// Any one shared label associates the stack.
	wantObjects(t, targetState(e, a, ""), "label match", obj)
	if got := ids(t, e.Must(200, "GET", v1+"/agents/"+a.ID+"/stacks", a.PAK, nil)); len(got) != 1 || got[0] != match {
		t.Fatalf("associated stacks = %v, want [%s]", got, match)
	}
	// The label association also lets the agent read the object and the stack's labels.
	e.Must(200, "GET", v1+"/deployment-objects/"+obj, a.PAK, nil)
	e.Must(200, "GET", v1+"/stacks/"+match+"/labels", a.PAK, nil)
	wantError(t, e.Do("GET", v1+"/stacks/"+other+"/labels", a.PAK, nil), 403, "labels of an unassociated stack")

	// Removing the agent's label ends the association.
	e.Must(204, "DELETE", v1+"/agents/"+a.ID+"/labels/env:prod", e.AdminPAK, nil)
	wantObjects(t, targetState(e, a, ""), "after removing the label")
	// Labelling the stack with the agent's other label associates it again.
	e.Must(201, "POST", v1+"/stacks/"+plain+"/labels", e.AdminPAK, `"team:web"`)
	objs := targetState(e, a, "")
	if len(objs) != 1 || objs[0].StackID != plain {
		t.Fatalf("after labelling the plain stack: %+v", objs)
	}
}

func TestTargetStateAssociationByAnnotation(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("by-annotation", "c")
	keyOnly := e.CreateAgent("key-only", "c")
	s1 := e.CreateStack(e.AdminPAK, "tier-1")
	s2 := e.CreateStack(e.AdminPAK, "tier-2")
	e.Must(201, "POST", v1+"/stacks/"+s1+"/annotations", e.AdminPAK, map[string]string{"key": "tier", "value": "1"})
	e.Must(201, "POST", v1+"/stacks/"+s2+"/annotations", e.AdminPAK, map[string]string{"key": "tier", "value": "2"})
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/annotations", e.AdminPAK, map[string]string{"key": "tier", "value": "1"})
	// Same key, different value: not associated.
	e.Must(201, "POST", v1+"/agents/"+keyOnly.ID+"/annotations", e.AdminPAK, map[string]string{"key": "tier", "value": "3"})
	// Same value under another key: not associated either.
	e.Must(201, "POST", v1+"/agents/"+keyOnly.ID+"/annotations", e.AdminPAK, map[string]string{"key": "level", "value": "1"})
	o1, _ := e.Deploy(e.AdminPAK, s1, cmYAML("t1"))
	e.Deploy(e.AdminPAK, s2, cmYAML("t2"))

	wantObjects(t, targetState(e, a, ""), "annotation pair match", o1)
	wantObjects(t, targetState(e, keyOnly, ""), "key or value alone")
	e.Must(200, "GET", v1+"/deployment-objects/"+o1, a.PAK, nil)
	wantError(t, e.Do("GET", v1+"/deployment-objects/"+o1, keyOnly.PAK, nil), 403, "object of an unassociated stack")

	e.Must(204, "DELETE", v1+"/stacks/"+s1+"/annotations/tier", e.AdminPAK, nil)
	wantObjects(t, targetState(e, a, ""), "after removing the stack's annotation")
}

func TestTargetStateAssociationByExplicitTarget(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("by-target", "c")
	b := e.CreateAgent("bystander", "c")
	s1 := e.CreateStack(e.AdminPAK, "targeted")
	s2 := e.CreateStack(e.AdminPAK, "untargeted")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": s1})
	o1, _ := e.Deploy(e.AdminPAK, s1, cmYAML("one"))
	e.Deploy(e.AdminPAK, s2, cmYAML("two"))

	wantObjects(t, targetState(e, a, ""), "explicit target", o1)
	wantObjects(t, targetState(e, b, ""), "agent without association")
	// The admin may read any agent's target state.
	var objs []object
	e.Must(200, "GET", v1+"/agents/"+a.ID+"/target-state", e.AdminPAK, nil).JSON(t, &objs)
	wantObjects(t, objs, "admin reading the agent's target state", o1)

	e.Must(204, "DELETE", v1+"/agents/"+a.ID+"/targets/"+s1, e.AdminPAK, nil)
	wantObjects(t, targetState(e, a, ""), "after un-targeting")
}

// TestTargetStateLatestPerStackAscending: one object per stack, the latest,
// ascending by sequence_id across stacks; SUCCESS hides, FAILURE keeps.
func TestTargetStateLatestPerStackAscending(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("several", "c")
	var stacks [3]string
	for i := range stacks {
		stacks[i] = e.CreateStack(e.AdminPAK, unique("many"))
		e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stacks[i]})
	}
	e.Deploy(e.AdminPAK, stacks[0], cmYAML("s0v1"))
	e.Deploy(e.AdminPAK, stacks[1], cmYAML("s1v1"))
	e.Deploy(e.AdminPAK, stacks[2], cmYAML("s2v1"))
	s0v2, q0 := e.Deploy(e.AdminPAK, stacks[0], cmYAML("s0v2"))
	s2v2, q2 := e.Deploy(e.AdminPAK, stacks[2], cmYAML("s2v2"))
	s1v2, q1 := e.Deploy(e.AdminPAK, stacks[1], cmYAML("s1v2"))
	if !(q0 < q2 && q2 < q1) {
		t.Fatalf("sequence ids not increasing: %d %d %d", q0, q2, q1)
	}
	wantObjects(t, targetState(e, a, ""), "latest per stack", s0v2, s2v2, s1v2)

	// FAILURE keeps an object, SUCCESS hides it; mode=full keeps it.
	ack(e, a, s2v2, "FAILURE")
	wantObjects(t, targetState(e, a, ""), "after FAILURE", s0v2, s2v2, s1v2)
	ack(e, a, s2v2, "SUCCESS")
	wantObjects(t, targetState(e, a, ""), "after SUCCESS", s0v2, s1v2)
	wantObjects(t, targetState(e, a, "?mode=full"), "mode=full", s0v2, s2v2, s1v2)
	// A newer object on the acknowledged stack is delivered again, last.
	s2v3, _ := e.Deploy(e.AdminPAK, stacks[2], cmYAML("s2v3"))
	wantObjects(t, targetState(e, a, ""), "after a new version", s0v2, s1v2, s2v3)
	// Another agent's SUCCESS does not hide anything for this one.
	b := e.CreateAgent("other", "c")
	e.Must(201, "POST", v1+"/agents/"+b.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": stacks[0]})
	ack(e, b, s0v2, "SUCCESS")
	wantObjects(t, targetState(e, a, ""), "after another agent's SUCCESS", s0v2, s1v2, s2v3)
	wantObjects(t, targetState(e, b, ""), "the other agent")
}

func TestTargetStateInactiveAgentGetsNothing(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("sleepy", "c")
	st := e.CreateStack(e.AdminPAK, "sleepy")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
	obj, _ := e.Deploy(e.AdminPAK, st, cmYAML("sleepy"))
	active := e.Must(200, "GET", v1+"/agents/"+a.ID+"/target-state", a.PAK, nil)

	e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"status": "INACTIVE"})
	r := e.Must(200, "GET", v1+"/agents/"+a.ID+"/target-state", a.PAK, nil)
	if string(r.Body) != "[]" {
		t.Fatalf("INACTIVE agent target state = %s, want []", r.Body)
	}
	if r.Header.Get("ETag") == active.Header.Get("ETag") {
		t.Fatal("ETag unchanged by deactivation")
	}
	// A cached ETag from the active state is stale now.
	r = e.Do("GET", v1+"/agents/"+a.ID+"/target-state", a.PAK, nil, "If-None-Match", active.Header.Get("ETag"))
	if r.Status != 200 || string(r.Body) != "[]" {
		t.Fatalf("conditional GET after deactivation: %d %s", r.Status, r.Body)
	}
	wantObjects(t, targetState(e, a, "?mode=full"), "INACTIVE mode=full")

	e.Must(200, "PUT", v1+"/agents/"+a.ID, e.AdminPAK, map[string]string{"status": "ACTIVE"})
	wantObjects(t, targetState(e, a, ""), "reactivated", obj)
}

func TestTargetStateETag(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("etag", "c")
	st := e.CreateStack(e.AdminPAK, "etag")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})
	p := v1 + "/agents/" + a.ID + "/target-state"

	empty := e.Must(200, "GET", p, a.PAK, nil).Header.Get("ETag")
	obj, _ := e.Deploy(e.AdminPAK, st, cmYAML("etag"))
	first := e.Must(200, "GET", p, a.PAK, nil)
	etag := first.Header.Get("ETag")
	if etag == "" || etag == empty {
		t.Fatalf("ETag %q after a deployment (empty state had %q)", etag, empty)
	}
	// Same state, same ETag; 304 has no body and repeats the ETag.
	if again := e.Must(200, "GET", p, a.PAK, nil).Header.Get("ETag"); again != etag {
		t.Fatalf("ETag not stable: %q then %q", etag, again)
	}
	r := e.Do("GET", p, a.PAK, nil, "If-None-Match", etag)
	if r.Status != http.StatusNotModified || len(r.Body) != 0 || r.Header.Get("ETag") != etag {
		t.Fatalf("conditional GET: %d %q etag %q", r.Status, r.Body, r.Header.Get("ETag"))
	}
	// The full mode is a different answer.
	r = e.Do("GET", p+"?mode=full", a.PAK, nil, "If-None-Match", etag)
	if r.Status != 200 {
		t.Fatalf("mode=full with the incremental ETag: %d", r.Status)
	}
	// An acknowledgement changes the state, so the old ETag no longer matches.
	ack(e, a, obj, "SUCCESS")
	r = e.Do("GET", p, a.PAK, nil, "If-None-Match", etag)
	if r.Status != 200 || string(r.Body) != "[]" {
		t.Fatalf("after SUCCESS: %d %s", r.Status, r.Body)
	}
	// A stale ETag gets the current state.
	r = e.Do("GET", p, a.PAK, nil, "If-None-Match", `"stale"`)
	if r.Status != 200 {
		t.Fatalf("stale ETag: %d", r.Status)
	}
	for _, bad := range []string{"?wait=abc", "?wait=-5s"} {
		wantError(t, e.Do("GET", p+bad, a.PAK, nil), 400, "target-state"+bad)
	}
	// wait with an unchanged ETag returns 304 when the wait is over.
	cur := e.Must(200, "GET", p, a.PAK, nil).Header.Get("ETag")
	r = e.Do("GET", p+"?wait=300ms", a.PAK, nil, "If-None-Match", cur)
	if r.Status != http.StatusNotModified {
		t.Fatalf("wait=300ms without change: %d %s", r.Status, r.Body)
	}
}

// TestTargetStateGeneratorDeletionDeliversMarkers: deleting a generator
// deletes its stacks, and each associated agent receives one deletion
// marker per stack until it acknowledges it
// (docs/compatibility.md#deletion-markers).
func TestTargetStateGeneratorDeletionDeliversMarkers(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("cleaner", "c")
	g := e.CreateGenerator("doomed")
	h := e.CreateGenerator("survivor")
	s1 := e.CreateStack(g.PAK, "doomed-1")
	s2 := e.CreateStack(g.PAK, "doomed-2")
	s3 := e.CreateStack(h.PAK, "survivor")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"fleet"`)
	for _, st := range []string{s1, s2} {
		e.Must(201, "POST", v1+"/stacks/"+st+"/labels", g.PAK, `"fleet"`)
	}
	e.Must(201, "POST", v1+"/stacks/"+s3+"/labels", h.PAK, `"fleet"`)
	o1, _ := e.Deploy(g.PAK, s1, cmYAML("d1"))
	o2, _ := e.Deploy(g.PAK, s2, cmYAML("d2"))
	o3, _ := e.Deploy(h.PAK, s3, cmYAML("d3"))
	wantObjects(t, targetState(e, a, ""), "before", o1, o2, o3)
	for _, o := range []string{o1, o2, o3} {
		ack(e, a, o, "SUCCESS")
	}
	wantObjects(t, targetState(e, a, ""), "all acknowledged")

	e.Must(204, "DELETE", v1+"/generators/"+g.ID, e.AdminPAK, nil)
	objs := targetState(e, a, "")
	if len(objs) != 2 {
		t.Fatalf("after generator deletion: %+v, want two deletion markers", objs)
	}
	markers := map[string]string{}
	for _, o := range objs {
		if !o.IsDeletionMarker {
			t.Fatalf("not a deletion marker: %+v", o)
		}
		markers[o.StackID] = o.ID
	}
	if markers[s1] == "" || markers[s2] == "" {
		t.Fatalf("markers %v, want one for %s and %s", markers, s1, s2)
	}
	wantObjects(t, objs, "markers ascending", objs[0].ID, objs[1].ID)
	// The stacks are gone from the agent's associations and from the API.
	if got := ids(t, e.Must(200, "GET", v1+"/agents/"+a.ID+"/stacks", a.PAK, nil)); len(got) != 1 || got[0] != s3 {
		t.Fatalf("associated stacks after deletion = %v", got)
	}
	wantError(t, e.Do("GET", v1+"/stacks/"+s1, e.AdminPAK, nil), 404, "stack of a deleted generator")
	// A marker is delivered until acknowledged; a FAILURE keeps it.
	ack(e, a, markers[s1], "FAILURE")
	wantObjects(t, targetState(e, a, ""), "after FAILURE on a marker", objs[0].ID, objs[1].ID)
	ack(e, a, markers[s1], "SUCCESS")
	wantObjects(t, targetState(e, a, ""), "after acknowledging one marker", markers[s2])
	// An agent registered after the deletion never applied those stacks.
	late := e.CreateAgent("late", "c")
	e.Must(201, "POST", v1+"/agents/"+late.ID+"/labels", e.AdminPAK, `"fleet"`)
	wantObjects(t, targetState(e, late, ""), "agent registered after the deletion", o3)
}

// TestTargetStateStackDeletionByLabel: a deleted stack associated by label
// (not an explicit target) also delivers its marker, and only the marker.
func TestTargetStateStackDeletionByLabel(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("label-cleaner", "c")
	st := e.CreateStack(e.AdminPAK, "label-deleted")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"x"`)
	e.Must(201, "POST", v1+"/stacks/"+st+"/labels", e.AdminPAK, `"x"`)
	e.Deploy(e.AdminPAK, st, cmYAML("v1"))
	last, seq := e.Deploy(e.AdminPAK, st, cmYAML("v2"))
	wantObjects(t, targetState(e, a, ""), "before", last)
	e.Must(204, "DELETE", v1+"/stacks/"+st, e.AdminPAK, nil)
	objs := targetState(e, a, "")
	if len(objs) != 1 || !objs[0].IsDeletionMarker || objs[0].StackID != st || objs[0].SequenceID <= seq {
		t.Fatalf("after deletion: %+v, want one newer marker for %s", objs, st)
	}
	// The marker is readable by the agent even though the stack is gone.
	r := e.Must(200, "GET", v1+"/deployment-objects/"+objs[0].ID, a.PAK, nil).Map(t)
	if r["is_deletion_marker"] != true {
		t.Fatalf("marker = %v", r)
	}
	ack(e, a, objs[0].ID, "SUCCESS")
	wantObjects(t, targetState(e, a, ""), "after acknowledging")
}

// TestTargetStateWakesOnlyConcernedLongPolls: a held long-poll is not woken
// by a label change on a stack it has nothing to do with (the former
// wake-everyone), and is woken with the new answer by a label change that
// associates a stack with it. Wakes are counted by the api's index.
func TestTargetStateWakesOnlyConcernedLongPolls(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("precise-wake", "c")
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/labels", e.AdminPAK, `"env:prod"`)
	unrelated := e.CreateStack(e.AdminPAK, "precise-unrelated")
	e.Deploy(e.AdminPAK, unrelated, cmYAML("unrelated"))
	later := e.CreateStack(e.AdminPAK, "precise-later")
	obj, _ := e.Deploy(e.AdminPAK, later, cmYAML("later"))
	p := v1 + "/agents/" + a.ID + "/target-state"
	etag := e.Must(200, "GET", p, a.PAK, nil).Header.Get("ETag")

	done := make(chan apitest.Response, 1)
	go func() { done <- e.Do("GET", p+"?wait=20s", a.PAK, nil, "If-None-Match", etag) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.Index.Waiting() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.Index.Waiting() == 0 {
		t.Fatal("long-poll never held")
	}
	wakes := e.Index.Stats().Wakes.Load()
	e.Must(201, "POST", v1+"/stacks/"+unrelated+"/labels", e.AdminPAK, `"env:dev"`)
	e.Must(201, "POST", v1+"/stacks/"+unrelated+"/annotations", e.AdminPAK, map[string]string{"key": "tier", "value": "1"})
	e.Must(204, "DELETE", v1+"/stacks/"+unrelated+"/labels/env:dev", e.AdminPAK, nil)
	if got := e.Index.Stats().Wakes.Load(); got != wakes {
		t.Fatalf("label/annotation changes on an unrelated stack woke %d long-polls", got-wakes)
	}
	select {
	case r := <-done:
		t.Fatalf("long-poll returned early: %d %s", r.Status, r.Body)
	default:
	}
	// Labelling a stack with the agent's label associates it: woken, 200.
	e.Must(201, "POST", v1+"/stacks/"+later+"/labels", e.AdminPAK, `"env:prod"`)
	r := <-done
	if r.Status != 200 || !strings.Contains(string(r.Body), obj) {
		t.Fatalf("after the concerning label: %d %s", r.Status, r.Body)
	}
	if e.Index.Stats().Wakes.Load() == wakes {
		t.Fatal("the concerning label change woke nobody")
	}
}
