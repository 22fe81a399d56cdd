package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

// Webhooks end to end: api, auth, templating and webhook-dispatch as real
// processes, real PostgreSQL and Redis, and a real HTTP receiver on
// loopback (so the stacks run with BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE,
// as `make up` does). Every test's URL, auth header, signing secret and
// encryption key are unique, and once its processes have stopped the test
// scans everything they logged for them.

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// whStack is a stack plus webhook-dispatch replicas.
type whStack struct {
	*stack
	mu       sync.Mutex
	dispatch []*proc
	secrets  []string
}

// newWebhookStack starts a stack and one webhook-dispatch. extra env
// entries apply to every process.
func newWebhookStack(t *testing.T, extra ...string) *whStack {
	t.Helper()
	w := &whStack{}
	key := randHex(32)
	w.secrets = append(w.secrets, key)
	forbidSecret(key)
	// Registered before any process starts, so it runs after they stopped.
	t.Cleanup(func() { w.scanLogs(t) })
	env := append([]string{"BROKKR_CONFIG_WATCHER_ENABLED=false", "BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE=true",
		"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=" + key, "BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS=1"}, extra...)
	w.stack = newStackWith(t, env...)
	w.startDispatch(t)
	return w
}

// startDispatch runs one more webhook-dispatch process.
func (w *whStack) startDispatch(t *testing.T) *proc {
	t.Helper()
	port := testsupport.FreePort(t)
	env := append(append([]string{}, w.env...), fmt.Sprintf("BROKKR__WEBHOOK_DISPATCH__ADDR=127.0.0.1:%d", port),
		"BROKKR__LOG__LEVEL=debug")
	p := start(t, env, "webhook-dispatch", "serve")
	waitReady(t, fmt.Sprintf("http://127.0.0.1:%d", port), p)
	w.mu.Lock()
	w.dispatch = append(w.dispatch, p)
	w.mu.Unlock()
	return p
}

// forbid adds secrets that must never be logged.
func (w *whStack) forbid(secrets ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.secrets = append(w.secrets, secrets...)
	forbidSecret(secrets...)
}

// scanLogs fails the test when any process logged a secret.
func (w *whStack) scanLogs(t *testing.T) {
	if w.stack == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	procs := map[string]*proc{"api": w.api, "auth": w.auth, "templating": w.templating}
	for i, p := range w.dispatch {
		procs[fmt.Sprintf("webhook-dispatch #%d", i+1)] = p
	}
	lines := 0
	for name, p := range procs {
		out := p.output()
		lines += strings.Count(out, "\n")
		for _, s := range w.secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s logged a webhook secret (%d characters long)", name, len(s))
			}
		}
	}
	if lines == 0 {
		t.Error("no log lines captured: the scan proves nothing")
	}
}

func (w *whStack) db(t *testing.T) *pgx.Conn {
	t.Helper()
	var url string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "BROKKR__DATABASE__URL="); ok {
			url = v
		}
	}
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// sinkHit is one request the receiver got.
type sinkHit struct {
	at     time.Time
	header http.Header
	body   []byte
}

// sink is the test's webhook receiver.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    []sinkHit
	perID   map[string]int
	respond func(n int) int // status for the n-th request of a delivery
	url     string
	auth    string
	secret  string
}

func newSink(t *testing.T, w *whStack) *sink {
	s := &sink{perID: map[string]int{}, auth: "Bearer e2e-auth-" + randHex(8), secret: "e2e-sign-" + randHex(8)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.hits = append(s.hits, sinkHit{time.Now(), r.Header.Clone(), b})
		id := r.Header.Get("X-Brokkr-Delivery-Id")
		s.perID[id]++
		n := s.perID[id]
		respond := s.respond
		s.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(n)
		}
		rw.WriteHeader(status)
	}))
	t.Cleanup(s.srv.Close)
	token := "e2e-token-" + randHex(8)
	s.url = s.srv.URL + "/hooks/" + token + "?key=" + token
	w.forbid(token, s.auth, s.secret)
	return s
}

func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.perID)
}

func (s *sink) all() []sinkHit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkHit(nil), s.hits...)
}

// duplicates counts extra requests per delivery id.
func (s *sink) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := 0
	for _, n := range s.perID {
		d += n - 1
	}
	return d
}

func (s *sink) subscribe(t *testing.T, w *whStack, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`{"name":"e2e-%s","url":%q,"auth_header":%q,"signing_secret":%q%s}`, randHex(3), s.url, s.auth, s.secret, extra)
	status, data := w.call("POST", "/api/v1/webhooks", "Bearer "+w.adminPAK, body)
	if status != 201 {
		t.Fatalf("create subscription: %d %s", status, data)
	}
	for _, secret := range []string{s.url, s.auth, s.secret} {
		if strings.Contains(string(data), secret) {
			t.Fatal("the create response shows a secret")
		}
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return m["id"].(string)
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestWebhooksDeliverEveryDocumentedEvent triggers each of the 12
// documented event types through the API and checks what arrives.
func TestWebhooksDeliverEveryDocumentedEvent(t *testing.T) {
	t.Parallel()
	w := newWebhookStack(t)
	rcv := newSink(t, w)
	admin := "Bearer " + w.adminPAK
	sub := rcv.subscribe(t, w, `,"event_types":["*"]`)

	ag := w.must(201, "POST", "/api/v1/agents", admin, `{"name":"wh-agent","cluster_name":"edge"}`)
	agentID := ag["agent"].(map[string]any)["id"].(string)
	agentPAK := "Bearer " + ag["initial_pak"].(string)
	stackID := w.must(201, "POST", "/api/v1/stacks", admin, `{"name":"wh-stack","description":"d"}`)["id"].(string)
	w.must(201, "POST", "/api/v1/agents/"+agentID+"/targets", admin, `{"stack_id":"`+stackID+`"}`)
	objID := w.must(201, "POST", "/api/v1/stacks/"+stackID+"/deployment-objects", admin,
		`{"yaml_content":"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wh\n  namespace: default\n"}`)["id"].(string)
	w.must(201, "POST", "/api/v1/agents/"+agentID+"/events", agentPAK,
		`{"deployment_object_id":"`+objID+`","event_type":"DEPLOY","status":"FAILURE","message":"quota exceeded"}`)
	w.must(201, "POST", "/api/v1/agents/"+agentID+"/events", agentPAK,
		`{"deployment_object_id":"`+objID+`","event_type":"DEPLOY","status":"SUCCESS","message":"applied"}`)
	w.must(204, "DELETE", "/api/v1/stacks/"+stackID, admin, "")
	var marker string
	for _, o := range w.list("GET", "/api/v1/agents/"+agentID+"/target-state", agentPAK) {
		if o["is_deletion_marker"] == true {
			marker = o["id"].(string)
		}
	}
	if marker == "" {
		t.Fatal("no deletion marker in the target state after deleting the stack")
	}
	w.must(201, "POST", "/api/v1/agents/"+agentID+"/events", agentPAK,
		`{"deployment_object_id":"`+marker+`","event_type":"DEPLOY","status":"SUCCESS"}`)
	job := `"apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: wh\n  namespace: default\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n"`
	for _, success := range []bool{true, false} {
		wo := w.must(201, "POST", "/api/v1/work-orders", admin, `{"work_type":"custom","max_retries":0,"yaml_content":`+job+
			`,"targeting":{"agent_ids":["`+agentID+`"]}}`)["id"].(string)
		w.must(200, "POST", "/api/v1/work-orders/"+wo+"/claim", agentPAK, `{"agent_id":"`+agentID+`"}`)
		w.must(200, "POST", "/api/v1/work-orders/"+wo+"/complete", agentPAK, fmt.Sprintf(`{"success":%t,"message":"done","retryable":false}`, success))
	}
	w.must(204, "DELETE", "/api/v1/agents/"+agentID, admin, "")

	// The documented data fields (docs/webhooks.md#events, with the docs'
	// names where they differ from the original's code,
	// docs/compatibility.md#event-payloads).
	want := map[string][]string{
		"agent.registered":    {"agent_id", "name", "cluster_name", "cluster", "status", "created_at"},
		"agent.deregistered":  {"agent_id", "name", "deleted_at"},
		"stack.created":       {"stack_id", "name", "description", "created_at"},
		"stack.deleted":       {"stack_id", "deleted_at"},
		"deployment.created":  {"deployment_object_id", "stack_id", "sequence_id", "created_at"},
		"deployment.applied":  {"agent_event_id", "agent_id", "deployment_object_id", "event_type", "status", "message", "created_at"},
		"deployment.failed":   {"agent_event_id", "agent_id", "deployment_object_id", "status", "message", "error"},
		"deployment.deleted":  {"deployment_object_id", "stack_id"},
		"workorder.created":   {"work_order_id", "work_type", "status", "created_at"},
		"workorder.claimed":   {"work_order_id", "work_type", "agent_id", "claimed_at"},
		"workorder.completed": {"work_order_log_id", "work_type", "success", "result_message", "agent_id", "completed_at"},
		"workorder.failed":    {"work_order_log_id", "work_type", "success", "result_message", "agent_id", "completed_at"},
	}
	got := map[string][]sinkHit{}
	testsupport.Eventually(t, 30*time.Second, "every event type", func() bool {
		got = map[string][]sinkHit{}
		for _, h := range rcv.all() {
			got[h.header.Get("X-Brokkr-Event-Type")] = append(got[h.header.Get("X-Brokkr-Event-Type")], h)
		}
		for typ := range want {
			if len(got[typ]) == 0 {
				return false
			}
		}
		return true
	})
	for typ, fields := range want {
		for _, h := range got[typ] {
			var env struct {
				ID        string         `json:"id"`
				EventType string         `json:"event_type"`
				Timestamp string         `json:"timestamp"`
				Data      map[string]any `json:"data"`
			}
			if err := json.Unmarshal(h.body, &env); err != nil {
				t.Fatalf("%s: body %s", typ, h.body)
			}
			if env.EventType != typ || !uuidRe.MatchString(env.ID) || !strings.HasSuffix(env.Timestamp, "Z") {
				t.Errorf("%s: envelope %s", typ, h.body)
			}
			for _, f := range fields {
				if _, ok := env.Data[f]; !ok {
					t.Errorf("%s: data has no %q: %s", typ, f, h.body)
				}
			}
			if ct := h.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", typ, ct)
			}
			if !uuidRe.MatchString(h.header.Get("X-Brokkr-Delivery-Id")) || h.header.Get("Authorization") != rcv.auth {
				t.Errorf("%s: headers %v", typ, h.header)
			}
			m := hmac.New(sha256.New, []byte(rcv.secret))
			m.Write(h.body)
			if h.header.Get("X-Brokkr-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) {
				t.Errorf("%s: bad signature", typ)
			}
		}
	}
	if got["deployment.failed"][0].body != nil {
		var env struct {
			Data map[string]any `json:"data"`
		}
		_ = json.Unmarshal(got["deployment.failed"][0].body, &env)
		if env.Data["status"] != "FAILURE" || env.Data["error"] != "quota exceeded" {
			t.Errorf("deployment.failed data %v", env.Data)
		}
	}
	// The API's delivery history agrees.
	testsupport.Eventually(t, 10*time.Second, "all deliveries recorded as success", func() bool {
		for _, d := range w.list("GET", "/api/v1/webhooks/"+sub+"/deliveries?limit=1000", admin) {
			if d["status"] != "success" {
				return false
			}
		}
		return true
	})
	// The test endpoint reaches the same receiver with the same headers.
	r := w.must(200, "POST", "/api/v1/webhooks/"+sub+"/test", admin, "")
	if r["success"] != true {
		t.Fatalf("test delivery: %v", r)
	}
}

// TestWebhookAgentModeContract plays the agent over HTTP against the real
// processes: a labelled agent claims and delivers, an unlabelled one gets
// nothing, and webhook-dispatch never sends an agent-mode delivery itself.
func TestWebhookAgentModeContract(t *testing.T) {
	t.Parallel()
	w := newWebhookStack(t)
	rcv := newSink(t, w)
	admin := "Bearer " + w.adminPAK
	sub := rcv.subscribe(t, w, `,"event_types":["stack.created"],"target_labels":["role:monitoring"]`)
	agent := func(name string, labels ...string) (string, string) {
		ag := w.must(201, "POST", "/api/v1/agents", admin, `{"name":"`+name+`","cluster_name":"c"}`)
		id := ag["agent"].(map[string]any)["id"].(string)
		for _, l := range labels {
			w.must(201, "POST", "/api/v1/agents/"+id+"/labels", admin, `"`+l+`"`)
		}
		return id, "Bearer " + ag["initial_pak"].(string)
	}
	labelled, labelledPAK := agent("monitor", "role:monitoring")
	other, otherPAK := agent("plain")
	for i := range 3 {
		w.must(201, "POST", "/api/v1/stacks", admin, fmt.Sprintf(`{"name":"am-%d"}`, i))
	}
	testsupport.Eventually(t, 10*time.Second, "three pending deliveries", func() bool {
		return len(w.list("GET", "/api/v1/webhooks/"+sub+"/deliveries?status=pending", admin)) == 3
	})
	if got := w.list("GET", "/api/v1/agents/"+other+"/webhooks/pending", otherPAK); len(got) != 0 {
		t.Fatalf("an unlabelled agent claimed %d", len(got))
	}
	claimed := w.list("GET", "/api/v1/agents/"+labelled+"/webhooks/pending", labelledPAK)
	if len(claimed) != 3 {
		t.Fatalf("the labelled agent claimed %d, want 3", len(claimed))
	}
	for _, d := range claimed {
		body := []byte(d["payload"].(string))
		req, _ := http.NewRequest("POST", d["url"].(string), strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Brokkr-Event-Type", d["event_type"].(string))
		req.Header.Set("X-Brokkr-Delivery-Id", d["id"].(string))
		req.Header.Set("Authorization", d["auth_header"].(string))
		m := hmac.New(sha256.New, []byte(d["signing_secret"].(string)))
		m.Write(body)
		req.Header.Set("X-Brokkr-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		w.must(200, "POST", "/api/v1/webhook-deliveries/"+d["id"].(string)+"/result", labelledPAK,
			fmt.Sprintf(`{"success":true,"status_code":%d,"duration_ms":3}`, resp.StatusCode))
	}
	for _, d := range w.list("GET", "/api/v1/webhooks/"+sub+"/deliveries", admin) {
		if d["status"] != "success" || d["acquired_by"] != labelled {
			t.Errorf("delivery %v", d)
		}
	}
	// Give webhook-dispatch a few sweeps: it must not have sent anything.
	time.Sleep(2500 * time.Millisecond)
	if n := len(rcv.all()); n != 3 {
		t.Fatalf("%d requests reached the receiver; want only the agent's 3", n)
	}
}

// burst creates n stacks (n stack.created events) with 8 clients; after
// every created stack it calls tick(i).
func burst(t *testing.T, w *whStack, prefix string, n int, tick func(i int)) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || t.Failed() {
					return
				}
				deadline := time.Now().Add(30 * time.Second)
				for {
					status, body := w.call("POST", "/api/v1/stacks", "Bearer "+w.adminPAK, fmt.Sprintf(`{"name":"%s-%d"}`, prefix, i))
					if status == 201 {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("stack %d: %d %s", i, status, body)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				if tick != nil {
					tick(i)
				}
			}
		})
	}
	wg.Wait()
}

// checkExactlyOnceish asserts every one of n events reached the receiver
// under one delivery id, every delivery is success, and repeats of a
// delivery id (at-least-once around a crash) stay few.
func checkExactlyOnceish(t *testing.T, w *whStack, rcv *sink, n, maxDup int) {
	t.Helper()
	db := w.db(t)
	testsupport.Eventually(t, 90*time.Second, fmt.Sprintf("%d deliveries at the receiver", n), func() bool { return rcv.distinct() == n })
	testsupport.Eventually(t, 30*time.Second, "every delivery recorded as success", func() bool {
		var ok int
		_ = db.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries WHERE status = 'success'`).Scan(&ok)
		return ok == n
	})
	var rows int
	_ = db.QueryRow(context.Background(), `SELECT count(*) FROM webhook_deliveries`).Scan(&rows)
	if rows != n {
		t.Fatalf("%d delivery rows for %d events", rows, n)
	}
	byEvent := map[string]map[string]bool{}
	for _, h := range rcv.all() {
		var env struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(h.body, &env)
		if byEvent[env.ID] == nil {
			byEvent[env.ID] = map[string]bool{}
		}
		byEvent[env.ID][h.header.Get("X-Brokkr-Delivery-Id")] = true
	}
	for ev, ids := range byEvent {
		if len(ids) != 1 {
			t.Errorf("event %s arrived under %d delivery ids", ev, len(ids))
		}
	}
	if len(byEvent) != n {
		t.Errorf("%d distinct events arrived, want %d", len(byEvent), n)
	}
	if d := rcv.duplicates(); d > maxDup {
		t.Errorf("%d repeated deliveries, more than the %d that can be in flight", d, maxDup)
	} else {
		t.Logf("%d events, %d repeated deliveries (at-least-once around the fault)", n, d)
	}
}

// TestWebhookChaosKillDispatch kills webhook-dispatch (SIGKILL) in the
// middle of a burst of 1,000 events and starts it again.
func TestWebhookChaosKillDispatch(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test")
	}
	t.Parallel()
	w := newWebhookStack(t, "BROKKR__WEBHOOK_DISPATCH__CONCURRENCY=20")
	rcv := newSink(t, w)
	rcv.subscribe(t, w, `,"event_types":["stack.created"],"timeout_seconds":1`)
	const n = 1000
	first := w.dispatch[0]
	var killed atomic.Bool
	burst(t, w, "kill", n, func(int) {
		if rcv.distinct() >= 150 && killed.CompareAndSwap(false, true) {
			_ = first.cmd.Process.Kill()
		}
	})
	if !killed.Load() {
		t.Fatal("the burst ended before webhook-dispatch was killed")
	}
	if code := first.exitCode(t, 10*time.Second); code != -1 {
		t.Fatalf("killed process exit code %d", code)
	}
	before := rcv.distinct()
	if before >= n {
		t.Fatalf("everything (%d) was delivered before the kill took effect", before)
	}
	w.startDispatch(t)
	checkExactlyOnceish(t, w, rcv, n, 20)
}

// privateRedis runs a redis-server of the test's own on a free port.
type privateRedis struct {
	port int
	cmd  *exec.Cmd
}

func (r *privateRedis) start() error {
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--protected-mode", "no")
	if err := r.cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("redis-server on port %d did not answer", r.port)
}

func (r *privateRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestWebhookChaosRedisStop stops the stack's Redis (a private
// redis-server, no persistence) during a burst and starts it again empty:
// every event still arrives, from PostgreSQL through the sweep.
func TestWebhookChaosRedisStop(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test")
	}
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	rd := &privateRedis{port: testsupport.FreePort(t)}
	if err := rd.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rd.stop)
	w := newWebhookStack(t, fmt.Sprintf("BROKKR__REDIS__URL=redis://127.0.0.1:%d/0", rd.port))
	rcv := newSink(t, w)
	rcv.subscribe(t, w, `,"event_types":["stack.created"]`)
	const n = 1000
	var stopped atomic.Bool
	var outage sync.WaitGroup
	var restartErr error
	outage.Add(1)
	burst(t, w, "redis", n, func(i int) {
		if i >= 300 && stopped.CompareAndSwap(false, true) {
			go func() {
				defer outage.Done()
				rd.stop()
				// Events keep committing meanwhile. Stay down until the
				// dispatcher has met the outage (its relay or sweep tried the
				// queue), at least 3 s and at most 30 s, so the fault is
				// exercised however fast this machine is.
				began := time.Now()
				for time.Since(began) < 30*time.Second {
					if time.Since(began) >= 3*time.Second && strings.Contains(w.dispatch[0].output(), "deliveries wait in PostgreSQL") {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				restartErr = rd.start()
			}()
		}
	})
	outage.Wait()
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	checkExactlyOnceish(t, w, rcv, n, 20)
	// The outage bit: the queue failed while Redis was away, and the sweep
	// re-created the tasks Redis lost.
	out := w.dispatch[0].output()
	for _, want := range []string{"deliveries wait in PostgreSQL", "requeued_deliveries"} {
		if !strings.Contains(out, want) {
			t.Errorf("webhook-dispatch never logged %q: the outage did not hit the queue", want)
		}
	}
}

// TestWebhookSecretsNeverLogged drives every failure path with secret-laden
// URLs, auth headers and signing secrets, with every process at debug
// level; the stack's cleanup then scans all their output.
func TestWebhookSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	w := newWebhookStack(t, "BROKKR__LOG__LEVEL=debug")
	admin := "Bearer " + w.adminPAK
	failing := newSink(t, w)
	failing.respond = func(int) int { return http.StatusInternalServerError }
	slow := newSink(t, w)
	slow.respond = func(int) int { time.Sleep(1500 * time.Millisecond); return http.StatusOK }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := "e2e-closed-" + randHex(8)
	closedURL := "http://" + l.Addr().String() + "/" + token + "?t=" + token
	_ = l.Close()
	closedAuth := "Token token=" + randHex(8)
	w.forbid(token, closedAuth)

	subs := []string{
		failing.subscribe(t, w, `,"event_types":["*"],"max_retries":1`),
		slow.subscribe(t, w, `,"event_types":["*"],"max_retries":0,"timeout_seconds":1`),
	}
	status, data := w.call("POST", "/api/v1/webhooks", admin, fmt.Sprintf(
		`{"name":"closed","url":%q,"auth_header":%q,"event_types":["*"],"max_retries":0}`, closedURL, closedAuth))
	if status != 201 {
		t.Fatalf("create: %d %s", status, data)
	}
	var closed map[string]any
	_ = json.Unmarshal(data, &closed)
	subs = append(subs, closed["id"].(string))

	// Validation errors, failing tests and an invalid update.
	for _, sub := range subs {
		if code, body := w.call("POST", "/api/v1/webhooks/"+sub+"/test", admin, ""); code != 400 || strings.Contains(string(body), token) {
			t.Errorf("test of a failing receiver: %d %s", code, body)
		}
	}
	if code, _ := w.call("PUT", "/api/v1/webhooks/"+subs[2], admin, `{"url":"gopher://`+token+`"}`); code != 400 {
		t.Errorf("invalid URL accepted: %d", code)
	}
	if code, _ := w.call("PUT", "/api/v1/webhooks/"+subs[2], admin, `{"auth_header":"`+closedAuth+`\r\nX: y"}`); code != 400 {
		t.Errorf("auth header with a line break accepted: %d", code)
	}

	// An agent that echoes the secrets in its error report.
	agentSink := newSink(t, w)
	agentSub := agentSink.subscribe(t, w, `,"event_types":["stack.created"],"target_labels":["edge"],"max_retries":0`)
	ag := w.must(201, "POST", "/api/v1/agents", admin, `{"name":"echo","cluster_name":"c"}`)
	agentID := ag["agent"].(map[string]any)["id"].(string)
	agentPAK := "Bearer " + ag["initial_pak"].(string)
	w.must(201, "POST", "/api/v1/agents/"+agentID+"/labels", admin, `"edge"`)

	w.must(201, "POST", "/api/v1/stacks", admin, `{"name":"secrets"}`)
	var claimed []map[string]any
	testsupport.Eventually(t, 10*time.Second, "an agent-mode delivery", func() bool {
		claimed = w.list("GET", "/api/v1/agents/"+agentID+"/webhooks/pending", agentPAK)
		return len(claimed) == 1
	})
	echo, _ := json.Marshal(map[string]any{"success": false, "status_code": 502,
		"error": "POST " + claimed[0]["url"].(string) + " with " + claimed[0]["auth_header"].(string) + " failed"})
	r := w.must(200, "POST", "/api/v1/webhook-deliveries/"+claimed[0]["id"].(string)+"/result", agentPAK, string(echo))
	if r["status"] != "dead" {
		t.Fatalf("agent failure: %v", r)
	}
	for _, d := range w.list("GET", "/api/v1/webhooks/"+agentSub+"/deliveries", admin) {
		if e, _ := d["last_error"].(string); strings.Contains(e, agentSink.auth) || !strings.Contains(e, "[REDACTED]") {
			t.Errorf("last_error %q", e)
		}
	}

	testsupport.Eventually(t, 30*time.Second, "every broker delivery dead", func() bool {
		for _, sub := range subs {
			ds := w.list("GET", "/api/v1/webhooks/"+sub+"/deliveries", admin)
			if len(ds) == 0 || ds[0]["status"] != "dead" {
				return false
			}
		}
		return true
	})
	errs := map[string]bool{}
	for _, sub := range subs {
		for _, d := range w.list("GET", "/api/v1/webhooks/"+sub+"/deliveries", admin) {
			errs[d["last_error"].(string)] = true
		}
	}
	for _, want := range []string{"HTTP 500 Internal Server Error", "Request failed: request timed out", "Request failed: connection refused"} {
		if !errs[want] {
			t.Errorf("no delivery ended with %q: %v", want, errs)
		}
	}
}
