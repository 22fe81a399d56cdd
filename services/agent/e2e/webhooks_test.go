package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

var webhookBuild struct {
	once sync.Once
	dir  string
	err  error
}

// webhookBinaries builds webhook-dispatch (the relay that turns events
// into deliveries) and the agent once per test process.
func webhookBinaries(t testing.TB) string {
	t.Helper()
	webhookBuild.once.Do(func() {
		webhookBuild.dir, webhookBuild.err = os.MkdirTemp("", "brokkr-e2e-wh-bin-")
		if webhookBuild.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", webhookBuild.dir+"/",
			"github.com/brokkr-go/brokkr/services/webhook-dispatch/cmd/webhook-dispatch",
			"github.com/brokkr-go/brokkr/services/agent/cmd/agent")
		out, err := cmd.CombinedOutput()
		if err != nil {
			webhookBuild.err = fmt.Errorf("building webhook-dispatch and agent: %v\n%s", err, out)
		}
	})
	if webhookBuild.err != nil {
		t.Fatal(webhookBuild.err)
	}
	return webhookBuild.dir
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// whAgent is an agent process: its id, health address and log file.
type whAgent struct {
	id     uuid.UUID
	health string
	log    string
}

// startAgentProcess registers an agent with labels and runs the agent
// binary for it (webhook delivery polling every second, the other hooks
// off), logging JSON at debug level to its own file.
func startAgentProcess(t *testing.T, b brokerEnv, kubeconfig, name string, labels ...string) whAgent {
	t.Helper()
	var created struct {
		Agent struct {
			ID uuid.UUID `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	b.call(t, http.MethodPost, "/agents", map[string]string{"name": name, "cluster_name": "e2e-cluster"}, &created)
	for _, l := range labels {
		b.call(t, http.MethodPost, "/agents/"+created.Agent.ID.String()+"/labels", l, nil)
	}
	health := freePort(t)
	_, port, _ := strings.Cut(health, ":")
	dir := t.TempDir()
	env := []string{
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=debug",
		"BROKKR__AGENT__BROKER_URL=" + b.url,
		"BROKKR__AGENT__PAK=" + created.InitialPAK,
		"BROKKR__AGENT__AGENT_NAME=" + name,
		"BROKKR__AGENT__CLUSTER_NAME=e2e-cluster",
		"BROKKR__AGENT__KUBECONFIG_PATH=" + kubeconfig,
		"BROKKR__AGENT__HEALTH_PORT=" + port,
		"BROKKR__AGENT__POLLING_INTERVAL=1",
		"BROKKR__AGENT__MAX_RETRIES=10",
		"BROKKR__AGENT__OUTBOX_DIR=" + filepath.Join(dir, "outbox"),
		"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS=5",
		"BROKKR__AGENT__DRIFT_CHECK_INTERVAL=0",
		"BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS=5",
		"BROKKR__AGENT__DEPLOYMENT_HEALTH_ENABLED=false",
		"BROKKR__AGENT__DIAGNOSTICS_ENABLED=false",
		"BROKKR__AGENT__WORK_ORDERS_ENABLED=false",
		"BROKKR__AGENT__WEBHOOK_POLL_INTERVAL=1",
		"BROKKR__AGENT__WEBHOOK_CONCURRENCY=4",
	}
	a := whAgent{id: created.Agent.ID, health: "http://" + health, log: filepath.Join(dir, name+".log")}
	startProcess(t, filepath.Join(webhookBinaries(t), "agent"), env, a.log, "start")
	waitReady(t, a.health+"/readyz")
	return a
}

// metric sums the samples of a family on the agent's /metrics whose
// labels contain every one of want (e.g. `outcome="success"`).
func (a whAgent) metric(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	resp, err := http.Get(a.health + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// hit is one request at the receiver.
type hit struct {
	at         time.Time
	deliveryID string
	header     http.Header
	body       []byte
	answer     int
}

// TestWebhookAgentDelivery runs the real api, auth and webhook-dispatch,
// two real agent processes and a local receiver: a subscription with
// target_labels is delivered by the agent carrying them, with the
// documented headers and signature, and never by the other one; a 500 is
// reported as retryable and retried later by the same agent; a 400 ends
// dead at once; no log line of any process holds the URL, the auth
// header or the signing secret.
func TestWebhookAgentDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped with -short")
	}
	// What must never be logged. The URL's path carries its own secret
	// token, as a Slack URL does.
	pathToken := "hook-" + uuid.NewString()
	authCred := "cred-" + randomHex(16)
	auth := "Bearer " + authCred
	signing := "signing-" + randomHex(16)
	var url string
	var logFiles []string
	// The first TempDir registers the removal of every later one: it runs
	// after the scan below, which runs after every process stopped and
	// wrote its final lines (their cleanups are registered later).
	_ = t.TempDir()
	t.Cleanup(func() {
		secrets := map[string]string{"URL": url, "URL path": pathToken, "auth header": auth,
			"auth credential": authCred, "signing secret": signing}
		for _, f := range logFiles {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Errorf("log %s: %v", f, err)
				continue
			}
			if len(data) == 0 {
				t.Errorf("log %s is empty", f)
			}
			for n, line := range strings.Split(string(data), "\n") {
				for what, s := range secrets {
					if s != "" && strings.Contains(line, s) {
						t.Errorf("%s line %d holds the %s: %s", filepath.Base(f), n+1, what, strings.ReplaceAll(line, s, "<"+what+">"))
					}
				}
			}
		}
	})

	key := randomHex(32)
	b := startBroker(t, "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY="+key, "BROKKR__LOG__LEVEL=debug")
	logFiles = append(logFiles, filepath.Join(b.logDir, "api.log"), filepath.Join(b.logDir, "auth.log"))
	dispatchLog := filepath.Join(t.TempDir(), "webhook-dispatch.log")
	logFiles = append(logFiles, dispatchLog)
	dispatchAddr := freePort(t)
	startProcess(t, filepath.Join(webhookBinaries(t), "webhook-dispatch"), []string{
		"BROKKR__DATABASE__URL=" + b.dbURL,
		"BROKKR__REDIS__URL=" + b.redisURL,
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=debug",
		"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=" + key,
		"BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS=1",
		"BROKKR__WEBHOOK_DISPATCH__ADDR=" + dispatchAddr,
	}, dispatchLog, "serve")
	waitReady(t, "http://"+dispatchAddr+"/readyz")

	// The receiver answers by stack name: "retry-…" 500 on the first
	// attempt, "reject-…" 400 (echoing the auth header and the URL), the
	// rest 200. It verifies the signature before parsing.
	var mu sync.Mutex
	hits := map[string][]hit{} // by stack name
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/"+pathToken || !webhook.Verify([]byte(signing), body, r.Header.Get(webhook.HeaderSignature)) {
			http.Error(w, "bad path or signature", http.StatusUnauthorized)
			return
		}
		var env struct {
			Data struct {
				Name string `json:"name"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &env)
		name := env.Data.Name
		mu.Lock()
		defer mu.Unlock()
		h := hit{at: time.Now(), deliveryID: r.Header.Get(webhook.HeaderDeliveryID), header: r.Header.Clone(), body: body, answer: 200}
		switch {
		case strings.HasPrefix(name, "retry-") && len(hits[name]) == 0:
			h.answer = http.StatusInternalServerError
		case strings.HasPrefix(name, "reject-"):
			h.answer = http.StatusBadRequest
		}
		hits[name] = append(hits[name], h)
		w.WriteHeader(h.answer)
		if h.answer == http.StatusBadRequest {
			fmt.Fprintf(w, "rejected %s for %s", r.Header.Get("Authorization"), r.URL.Path)
		}
	}))
	defer rc.Close()
	url = rc.URL + "/" + pathToken

	kubeconfig := testenv.ForTest(t).Kubeconfig
	labelled := startAgentProcess(t, b, kubeconfig, "wh-labelled", "role:monitoring", "zone:a")
	// Carries one of the two target labels: it must not claim.
	other := startAgentProcess(t, b, kubeconfig, "wh-other", "zone:a")
	logFiles = append(logFiles, labelled.log, other.log)

	var sub struct {
		ID uuid.UUID `json:"id"`
	}
	b.call(t, http.MethodPost, "/webhooks", map[string]any{
		"name": "in-cluster receiver", "url": url, "auth_header": auth, "signing_secret": signing,
		"event_types": []string{"stack.created"}, "target_labels": []string{"role:monitoring", "zone:a"},
		"timeout_seconds": 5, "max_retries": 3,
	}, &sub)

	// Both agents poll before anything is pending.
	eventually(t, 30*time.Second, func() string {
		for _, a := range []whAgent{labelled, other} {
			if a.metric(t, "brokkr_agent_webhook_polls_total", `result="success"`) < 1 {
				return "an agent has not claimed yet"
			}
		}
		return ""
	})
	otherPolls := other.metric(t, "brokkr_agent_webhook_polls_total", `result="success"`)

	suffix := uuid.NewString()[:8]
	names := []string{"ok-" + suffix, "retry-" + suffix, "reject-" + suffix}
	for _, n := range names {
		b.call(t, http.MethodPost, "/stacks", map[string]any{"name": n}, nil)
	}

	type delivery struct {
		ID             uuid.UUID  `json:"id"`
		Payload        string     `json:"payload"`
		Status         string     `json:"status"`
		Attempts       int        `json:"attempts"`
		AcquiredBy     *uuid.UUID `json:"acquired_by"`
		LastError      *string    `json:"last_error"`
		LastStatusCode *int       `json:"last_status_code"`
	}
	byName := map[string]delivery{}
	eventually(t, 60*time.Second, func() string {
		var ds []delivery
		b.call(t, http.MethodGet, "/webhooks/"+sub.ID.String()+"/deliveries", nil, &ds)
		byName = map[string]delivery{}
		for _, d := range ds {
			var env struct {
				Data struct {
					Name string `json:"name"`
				} `json:"data"`
			}
			_ = json.Unmarshal([]byte(d.Payload), &env)
			byName[env.Data.Name] = d
		}
		if len(ds) != 3 {
			return fmt.Sprintf("%d deliveries, want 3", len(ds))
		}
		for _, n := range names {
			want := "success"
			if strings.HasPrefix(n, "reject-") {
				want = "dead"
			}
			if byName[n].Status != want {
				return fmt.Sprintf("delivery for %s is %s (attempts %d), want %s", n, byName[n].Status, byName[n].Attempts, want)
			}
		}
		return ""
	})

	mu.Lock()
	defer mu.Unlock()
	// Headers, signature (checked on receipt) and the payload byte for byte.
	for _, n := range names {
		d := byName[n]
		for _, h := range hits[n] {
			if h.deliveryID != d.ID.String() || string(h.body) != d.Payload {
				t.Errorf("%s: request for delivery %s with body %s, want %s with %s", n, h.deliveryID, h.body, d.ID, d.Payload)
			}
			for k, want := range map[string]string{"Content-Type": "application/json", "X-Brokkr-Event-Type": "stack.created",
				"Authorization": auth, "User-Agent": "Brokkr-Webhook/1.0"} {
				if h.header.Get(k) != want {
					t.Errorf("%s: header %s = %q, want %q", n, k, h.header.Get(k), want)
				}
			}
		}
	}
	// Delivered by the labelled agent, which keeps its name on success.
	for _, n := range []string{names[0], names[1]} {
		if d := byName[n]; d.AcquiredBy == nil || *d.AcquiredBy != labelled.id {
			t.Errorf("%s delivered by %v, want the labelled agent %s", n, d.AcquiredBy, labelled.id)
		}
	}
	if got := len(hits[names[0]]); got != 1 {
		t.Errorf("%s received %d times, want once", names[0], got)
	}
	// The 500 was reported as retryable and retried after the backoff (2 s
	// at least), not at once; the 400 ended dead after one attempt.
	retry := hits[names[1]]
	if len(retry) != 2 || retry[0].answer != 500 || retry[1].answer != 200 {
		t.Fatalf("%s: %d attempts at the receiver, want a 500 then a 200", names[1], len(retry))
	}
	if gap := retry[1].at.Sub(retry[0].at); gap < 2*time.Second {
		t.Errorf("retry %v after the 500, want at least the 2 s backoff", gap)
	}
	if d := byName[names[1]]; d.Attempts != 2 || d.LastStatusCode == nil || *d.LastStatusCode != 200 {
		t.Errorf("retried delivery: attempts %d, last status %v", d.Attempts, d.LastStatusCode)
	}
	rej := byName[names[2]]
	if len(hits[names[2]]) != 1 || rej.Attempts != 1 || rej.LastStatusCode == nil || *rej.LastStatusCode != 400 ||
		rej.LastError == nil || !strings.HasPrefix(*rej.LastError, "HTTP 400 Bad Request: rejected [REDACTED]") {
		t.Errorf("rejected delivery: %d requests, attempts %d, status %v, error %v", len(hits[names[2]]), rej.Attempts,
			rej.LastStatusCode, rej.LastError)
	}
	if rej.LastError != nil && (strings.Contains(*rej.LastError, authCred) || strings.Contains(*rej.LastError, pathToken)) {
		t.Errorf("last_error holds a secret: %q", *rej.LastError)
	}

	// The labelled agent made all four attempts; the other one, polling all
	// along, none.
	for outcome, want := range map[string]float64{"success": 2, "retryable": 1, "rejected": 1} {
		if got := labelled.metric(t, "brokkr_agent_webhook_deliveries_total", `outcome="`+outcome+`"`); got != want {
			t.Errorf("labelled agent: deliveries_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	if got := labelled.metric(t, "brokkr_agent_webhook_reports_total", `result="recorded"`); got != 4 {
		t.Errorf("labelled agent: %v reports recorded, want 4", got)
	}
	if got := other.metric(t, "brokkr_agent_webhook_deliveries_total"); got != 0 {
		t.Errorf("the agent without the role:monitoring label made %v delivery attempts", got)
	}
	if got := other.metric(t, "brokkr_agent_webhook_polls_total", `result="success"`); got < otherPolls+3 {
		t.Errorf("the other agent claimed %v times during the run, want at least 3", got-otherPolls)
	}

	// The log scan (in the cleanup) must not be vacuous: the labelled
	// agent logged every attempt, by delivery id.
	data, _ := os.ReadFile(labelled.log)
	for _, n := range names {
		if !strings.Contains(string(data), byName[n].ID.String()) {
			t.Errorf("the labelled agent's log does not name delivery %s", byName[n].ID)
		}
	}
	for _, want := range []string{`"msg":"webhook delivered"`, `"msg":"webhook delivery attempt failed"`, `"status_code":500`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the labelled agent's log lacks %s", want)
		}
	}
	if otherLog, _ := os.ReadFile(other.log); strings.Contains(string(otherLog), "webhook delivered") {
		t.Error("the other agent logged a delivery")
	}
}
