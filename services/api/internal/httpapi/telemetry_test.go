package httpapi_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// telemetryRoleRows are the stack telemetry routes of the role matrix: the
// ingest is the agent's own; history and the live tail are the admin's and
// the owning generator's (0.9.1's openapi; agents 403).
func telemetryRoleRows() []roleRow {
	stackPath := func(suffix string) func(*matrixFixture, who) call {
		return func(f *matrixFixture, _ who) call { return call{path: v1 + "/stacks/" + f.stack + suffix} }
	}
	return []roleRow{
		{"POST", "/agents/:id/telemetry", [numWho]int{403, 202, 403, 403, 403}, func(f *matrixFixture, _ who) call {
			return call{path: v1 + "/agents/" + f.a.ID + "/telemetry", body: map[string]any{"frames": []any{}}}
		}},
		{"GET", "/stacks/:id/logs", adminOrOwnGen, stackPath("/logs")},
		{"GET", "/stacks/:id/events", adminOrOwnGen, stackPath("/events")},
		// A plain GET (no Upgrade) passes the ownership check, then 426.
		{"GET", "/stacks/:id/live", [numWho]int{426, 403, 403, 426, 403}, stackPath("/live")},
	}
}

// telemetryWorld is a generator's stack targeted by agent a; agent b is a
// stranger to it.
type telemetryWorld struct {
	e     *apitest.Env
	g     apitest.Generator
	a, b  apitest.Agent
	stack string
}

func newTelemetryWorld(t *testing.T, e *apitest.Env) telemetryWorld {
	w := telemetryWorld{e: e, g: e.CreateGenerator(unique("tel-g")), a: e.CreateAgent(unique("tel-a"), "c"),
		b: e.CreateAgent(unique("tel-b"), "c")}
	w.stack = e.CreateStack(w.g.PAK, unique("tel"))
	e.Must(201, "POST", v1+"/agents/"+w.a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": w.stack})
	return w
}

func logFrame(stack, line string) map[string]any {
	return map[string]any{"type": "pod_log_line", "body": map[string]any{"stack_id": stack, "namespace": "default",
		"pod": "web-1", "container": "app", "ts": time.Now().UTC().Format(time.RFC3339Nano), "line": line}}
}

func eventFrame(stack, reason string) map[string]any {
	return map[string]any{"type": "k8s_event", "body": map[string]any{"stack_id": stack,
		"observed_at": time.Now().UTC().Format(time.RFC3339), "reason": reason, "message": "0/1 nodes are available",
		"event_type": "Warning", "source": "scheduler", "involved_object": map[string]any{"api_version": "v1", "kind": "Pod",
			"namespace": "default", "name": "web-1", "uid": "u-1"}}}
}

func gapFrame(stack, reason string, n int) map[string]any {
	return map[string]any{"type": "log_gap", "body": map[string]any{"stack_id": stack,
		"since_ts": time.Now().UTC().Format(time.RFC3339), "dropped_count": n, "reason": reason, "pod": "web-1"}}
}

func (w telemetryWorld) post(pak string, frames ...map[string]any) apitest.Response {
	return w.e.Do("POST", v1+"/agents/"+w.a.ID+"/telemetry", pak, map[string]any{"frames": frames})
}

type ingestResult struct {
	Accepted int `json:"accepted"`
	Dropped  int `json:"dropped"`
}

type logHistory struct {
	Retention map[string]any   `json:"retention"`
	Lines     []map[string]any `json:"lines"`
}

func (w telemetryWorld) logs(t *testing.T, pak, query string) logHistory {
	t.Helper()
	var h logHistory
	w.e.Must(200, "GET", v1+"/stacks/"+w.stack+"/logs"+query, pak, nil).JSON(t, &h)
	return h
}

// Ingest end to end: frames of an associated stack are stored (a gap as a
// log row), frames of other stacks are dropped and counted; the history
// answers 0.9.1's shapes with the retention block, newest first, with
// since and limit.
func TestTelemetryIngestAndHistory(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	w := newTelemetryWorld(t, e)
	other := e.CreateStack(w.g.PAK, unique("tel-other"))

	var res ingestResult
	r := w.post(w.a.PAK, logFrame(w.stack, "first"), eventFrame(w.stack, "FailedScheduling"),
		logFrame(other, "not associated"), gapFrame(w.stack, "rate_limit", 42),
		logFrame("00000000-0000-4000-8000-0000000000ff", "unknown stack"))
	if r.Status != 202 {
		t.Fatalf("ingest: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &res)
	if res.Accepted != 3 || res.Dropped != 2 {
		t.Fatalf("result %+v, want 3 accepted 2 dropped", res)
	}
	// A line longer than 16 KiB is cut; agent_id may be given if it is the path's.
	long := logFrame(w.stack, strings.Repeat("x", 20<<10))
	long["body"].(map[string]any)["agent_id"] = w.a.ID
	e.Must(202, "POST", v1+"/agents/"+w.a.ID+"/telemetry", w.a.PAK, map[string]any{"frames": []any{long}})

	h := w.logs(t, w.g.PAK, "")
	if len(h.Lines) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(h.Lines), h.Lines)
	}
	wantKeys(t, h.Retention, "retention", "retention_ceiling_seconds", "effective_retention_seconds",
		"oldest_available_ts", "long_term_sink_hint")
	if h.Retention["retention_ceiling_seconds"] != 21600.0 || h.Retention["effective_retention_seconds"] != 21600.0 {
		t.Errorf("retention %v", h.Retention)
	}
	oldest := wantTimestamp(t, h.Retention["oldest_available_ts"], "oldest_available_ts")
	// Newest first: the long line, then the gap, then the first line.
	if n := len(h.Lines[0]["line"].(string)); n != 16<<10 {
		t.Errorf("long line stored with %d bytes, want 16384", n)
	}
	gap, first := h.Lines[1], h.Lines[2]
	if gap["kind"] != "gap" || gap["dropped_count"] != 42.0 || gap["reason"] != "rate_limit" || gap["pod"] != "web-1" {
		t.Errorf("gap row %v", gap)
	}
	wantKeys(t, first, "line", "id", "agent_id", "stack_id", "namespace", "pod", "container", "ts", "line", "created_at", "kind")
	if first["line"] != "first" || first["agent_id"] != w.a.ID || first["kind"] != "line" {
		t.Errorf("line row %v", first)
	}
	if created := wantTimestamp(t, first["created_at"], "created_at"); !created.Equal(oldest) {
		t.Errorf("oldest_available_ts %v, oldest row %v", oldest, created)
	}
	if got := w.logs(t, e.AdminPAK, "?limit=1"); len(got.Lines) != 1 {
		t.Errorf("limit=1: %d rows", len(got.Lines))
	}
	if got := w.logs(t, e.AdminPAK, "?limit=999999"); len(got.Lines) != 3 {
		t.Errorf("limit over the maximum is capped, not refused: %d rows", len(got.Lines))
	}
	if got := w.logs(t, e.AdminPAK, "?since=2001-01-01T00:00:00Z"); len(got.Lines) != 3 {
		t.Errorf("since older than the ceiling is clamped: %d rows", len(got.Lines))
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := w.logs(t, e.AdminPAK, "?since="+future); len(got.Lines) != 0 || got.Retention["oldest_available_ts"] == nil {
		t.Errorf("since in the future: %d rows, retention %v", len(got.Lines), got.Retention)
	}
	wantError(t, e.Do("GET", v1+"/stacks/"+w.stack+"/logs?limit=0", e.AdminPAK, nil), 400, "limit=0")
	wantError(t, e.Do("GET", v1+"/stacks/"+w.stack+"/logs?since=yesterday", e.AdminPAK, nil), 400, "bad since")
	wantError(t, e.Do("GET", v1+"/stacks/00000000-0000-4000-8000-0000000000ff/logs", e.AdminPAK, nil), 404, "unknown stack")

	var ev struct {
		Retention map[string]any   `json:"retention"`
		Events    []map[string]any `json:"events"`
	}
	e.Must(200, "GET", v1+"/stacks/"+w.stack+"/events", w.g.PAK, nil).JSON(t, &ev)
	if len(ev.Events) != 1 {
		t.Fatalf("events %v", ev.Events)
	}
	wantKeys(t, ev.Events[0], "event", "id", "agent_id", "stack_id", "observed_at", "reason", "message", "event_type",
		"source", "involved_object", "created_at")
	obj, _ := ev.Events[0]["involved_object"].(map[string]any)
	if ev.Events[0]["reason"] != "FailedScheduling" || ev.Events[0]["source"] != "scheduler" || obj["kind"] != "Pod" || obj["uid"] != "u-1" {
		t.Errorf("event %v", ev.Events[0])
	}
	var empty struct {
		Events []any `json:"events"`
	}
	e.Must(200, "GET", v1+"/stacks/"+other+"/events", w.g.PAK, nil).JSON(t, &empty)
	if empty.Events == nil || len(empty.Events) != 0 {
		t.Errorf("the other stack's events: %v (want [], not null)", empty.Events)
	}
}

// Hostile ingests store nothing: another agent's path, another agent's id
// in a body, malformed JSON, unknown types, missing fields, a bad gap
// reason, too many frames, too many bytes, the wrong content type.
func TestTelemetryIngestRefusals(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	w := newTelemetryWorld(t, e)
	path := v1 + "/agents/" + w.a.ID + "/telemetry"
	ok := logFrame(w.stack, "ok")

	wantErrorCode(t, e.Do("POST", path, w.b.PAK, map[string]any{"frames": []any{ok}}), 403, "agent_pak_mismatch", "another agent's path")
	wantErrorCode(t, e.Do("POST", path, e.AdminPAK, map[string]any{"frames": []any{ok}}), 403, "agent_pak_mismatch", "admin")
	wantErrorCode(t, e.Do("POST", path, w.g.PAK, map[string]any{"frames": []any{ok}}), 403, "agent_pak_mismatch", "generator")
	spoof := logFrame(w.stack, "spoofed")
	spoof["body"].(map[string]any)["agent_id"] = w.b.ID
	wantErrorCode(t, w.post(w.a.PAK, ok, spoof), 400, "agent_id_mismatch", "another agent's id in a body")
	wantError(t, e.Do("POST", path, w.a.PAK, `{"frames": [`), 400, "malformed JSON")
	wantErrorCode(t, w.post(w.a.PAK, ok, map[string]any{"type": "heartbeat", "body": map[string]any{}}), 422,
		"unprocessable_entity", "unknown type")
	wantError(t, e.Do("POST", path, w.a.PAK, `{}`), 422, "no frames field")
	wantError(t, e.Do("POST", path, w.a.PAK, `{"frames": [{"type": "pod_log_line", "body": "text"}]}`), 422, "body of the wrong type")
	missing := logFrame(w.stack, "x")
	delete(missing["body"].(map[string]any), "ts")
	wantError(t, w.post(w.a.PAK, missing), 422, "missing ts")
	wantError(t, w.post(w.a.PAK, gapFrame(w.stack, "because", 1)), 422, "unknown gap reason")
	wantError(t, w.post(w.a.PAK, map[string]any{"type": "k8s_event", "body": nil}), 422, "null body")
	many := make([]map[string]any, 501)
	for i := range many {
		many[i] = logFrame(w.stack, "x")
	}
	wantErrorCode(t, w.post(w.a.PAK, many...), 413, "payload_too_large", "501 frames")
	huge := []map[string]any{logFrame(w.stack, strings.Repeat("y", 600<<10)), logFrame(w.stack, strings.Repeat("z", 600<<10))}
	wantErrorCode(t, w.post(w.a.PAK, huge...), 413, "payload_too_large", "over 1 MiB")
	wantError(t, e.Do("POST", path, w.a.PAK, `{"frames": []}`, "Content-Type", "text/plain"), 415, "text/plain")

	if h := w.logs(t, e.AdminPAK, ""); len(h.Lines) != 0 {
		t.Errorf("refused batches stored %d rows: %v", len(h.Lines), h.Lines)
	}
}

type telemetryFrame struct {
	Type string         `json:"type"`
	Body map[string]any `json:"body"`
}

func dialLive(t *testing.T, e *apitest.Env, stack string, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+v1+"/stacks/"+stack+"/live", opts)
}

func bearer(pak string) *websocket.DialOptions {
	return &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + pak}}}
}

// The live tail across replicas: two api processes share PostgreSQL and
// Redis; frames ingested on one reach the other's subscribers (the owning
// generator by header, the admin by browser subprotocol), in order, with
// only the accepted frames. Agents and other generators are refused.
func TestTelemetryLiveAcrossReplicas(t *testing.T) {
	t.Parallel()
	ingest := apitest.New(t)
	serve := apitest.New(t, apitest.WithReplicaOf(ingest))
	w := newTelemetryWorld(t, ingest)
	other := ingest.CreateStack(w.g.PAK, unique("tel-other"))

	gen, _, err := dialLive(t, serve, w.stack, bearer(w.g.PAK))
	if err != nil {
		t.Fatal(err)
	}
	defer gen.CloseNow()
	browser, resp, err := dialLive(t, serve, w.stack, &websocket.DialOptions{Subprotocols: []string{"brokkr.pak." + serve.AdminPAK, "brokkr.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer browser.CloseNow()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "brokkr.v1" {
		t.Errorf("echoed subprotocol %q, want brokkr.v1", got)
	}
	testsupport.Eventually(t, 5*time.Second, "both subscribers registered", func() bool { return serve.TelemetryLive.Subscribers() == 2 })

	w.post(w.a.PAK, logFrame(other, "elsewhere"), logFrame(w.stack, "one"), eventFrame(w.stack, "Pulled"),
		gapFrame(w.stack, "disconnected", 3), logFrame(w.stack, "two"))
	for name, conn := range map[string]*websocket.Conn{"generator": gen, "browser": browser} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var got []string
		for len(got) < 4 {
			var f telemetryFrame
			if err := wsjson.Read(ctx, conn, &f); err != nil {
				t.Fatalf("%s: after %v: %v", name, got, err)
			}
			if f.Body["stack_id"] != w.stack || f.Body["agent_id"] != w.a.ID {
				t.Errorf("%s: frame %+v", name, f)
			}
			switch f.Type {
			case "pod_log_line":
				got = append(got, f.Body["line"].(string))
			case "k8s_event":
				got = append(got, f.Body["reason"].(string))
			case "log_gap":
				got = append(got, f.Body["reason"].(string))
			}
		}
		cancel()
		if strings.Join(got, ",") != "one,Pulled,disconnected,two" {
			t.Errorf("%s received %v", name, got)
		}
	}

	for _, pak := range []string{w.a.PAK, ingest.CreateGenerator(unique("tel-h")).PAK} {
		if _, resp, err := dialLive(t, serve, w.stack, bearer(pak)); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("agent or other generator: %v %v", resp, err)
		}
	}
	if _, resp, err := dialLive(t, serve, w.stack, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("no PAK: %v %v", resp, err)
	}
	if _, resp, err := dialLive(t, serve, "00000000-0000-4000-8000-0000000000ff", bearer(serve.AdminPAK)); err == nil || resp == nil || resp.StatusCode != 404 {
		t.Errorf("unknown stack: %v %v", resp, err)
	}
	wantCode(t, serve.Do("GET", v1+"/stacks/"+w.stack+"/live", serve.AdminPAK, nil), 426, "upgrade_required")
}

// A subscriber that does not read loses frames beyond its 1024-frame
// queue (and what the sockets hold), never slowing ingestion; when it
// reads again it gets a buffer_full gap counting exactly what it lost.
func TestTelemetryLiveSlowReaderGetsBufferFullGap(t *testing.T) {
	t.Parallel()
	ingest := apitest.New(t)
	serve := apitest.New(t, apitest.WithReplicaOf(ingest))
	w := newTelemetryWorld(t, ingest)

	// A small receive buffer (still above the loopback MSS, so window
	// updates flow), so the sockets absorb a few MiB at most.
	dialer := &net.Dialer{}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(256 << 10)
		}
		return c, err
	}}}
	conn, _, err := dialLive(t, serve, w.stack, &websocket.DialOptions{HTTPClient: client,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + w.g.PAK}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(64 << 10)
	testsupport.Eventually(t, 5*time.Second, "the subscriber registered", func() bool { return serve.TelemetryLive.Subscribers() == 1 })

	// 2400 frames of 8 KiB: 20 MiB, more than the queue (1024 frames)
	// and the sockets (the server's send buffer grows to 4 MiB) hold.
	const batches, perBatch = 20, 120
	line := strings.Repeat("l", 8<<10)
	for range batches {
		frames := make([]map[string]any, perBatch)
		for i := range frames {
			frames[i] = logFrame(w.stack, line)
		}
		if r := w.post(w.a.PAK, frames...); r.Status != 202 {
			t.Fatalf("ingest: %d %s", r.Status, r.Body)
		}
	}
	testsupport.Eventually(t, 20*time.Second, "every frame offered to the subscriber",
		func() bool { return serve.TelemetryLive.Delivered() == batches*perBatch })

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lines, lost, gaps := 0, 0, 0
	for lines+lost < batches*perBatch {
		var f telemetryFrame
		if err := wsjson.Read(ctx, conn, &f); err != nil {
			t.Fatalf("after %d lines and %d lost: %v", lines, lost, err)
		}
		switch f.Type {
		case "pod_log_line":
			lines++
		case "log_gap":
			if f.Body["reason"] != "buffer_full" {
				t.Fatalf("gap %v", f.Body)
			}
			gaps++
			n, _ := json.Number(strings.TrimSpace(jsonString(f.Body["dropped_count"]))).Int64()
			lost += int(n)
		}
	}
	if gaps == 0 || lost == 0 || lines < 1024 {
		t.Fatalf("%d lines, %d gaps, %d lost: want the queue's 1024 lines and a buffer_full gap", lines, gaps, lost)
	}
	t.Logf("slow reader: %d lines delivered, %d lost in %d gap(s)", lines, lost, gaps)
	// Everything was stored regardless.
	var h logHistory
	ingest.Must(200, "GET", v1+"/stacks/"+w.stack+"/logs?limit=5000", w.g.PAK, nil).JSON(t, &h)
	if len(h.Lines) != batches*perBatch {
		t.Errorf("%d rows stored, want %d", len(h.Lines), batches*perBatch)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
