// Package consoletest drives the fleet console in headless Chromium
// (Debian's chromium package, through chromedp) against the real
// processes: auth, api, templating and webhook-dispatch on a fresh
// PostgreSQL database and the real Redis, and a real agent applying to the
// local kube-apiserver of tools/testenv. It takes screenshots of each view
// into $BROKKR_CONSOLE_SCREENSHOTS (default: a directory under the temp
// dir, printed by the test); docs/console/ holds copies of the main ones.
package consoletest

import (
	"bytes"
	"context"
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
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var bins = testsupport.Binaries{Prefix: "brokkr-console-bin-", Packages: []string{
	"github.com/brokkr-go/brokkr/services/api/cmd/api",
	"github.com/brokkr-go/brokkr/services/auth/cmd/auth",
	"github.com/brokkr-go/brokkr/services/templating/cmd/templating",
	"github.com/brokkr-go/brokkr/services/webhook-dispatch/cmd/webhook-dispatch",
	"github.com/brokkr-go/brokkr/services/agent/cmd/agent",
}}

// binaries builds the commands once per test process.
func binaries(t testing.TB) string { return bins.Dir(t) }

// chromiumPath finds the browser. make test installs Debian's chromium
// when it is missing (tools/devenv/chromium.sh); this test never skips.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BROKKR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium found: run tools/devenv/chromium.sh (make test runs it) or set BROKKR_CHROMIUM")
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// proc is a running process whose output goes to a log file.
type proc struct {
	name string
	log  string
}

// start runs bin/name (its first word) until the test ends, logging to
// a file the failure report prints.
func start(t *testing.T, bin, name string, env []string, args ...string) proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	testsupport.Start(t, testsupport.Command{
		Bin: filepath.Join(bin, strings.Fields(name)[0]), Args: args,
		Env: append(os.Environ(), env...), Log: logPath, Name: name,
	})
	return proc{name: name, log: logPath}
}

// broker is the running control plane.
type broker struct {
	t        *testing.T
	url      string
	adminPAK string
	procs    []proc
	bin      string
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	bin := binaries(t)
	dir := t.TempDir()
	addrs := testsupport.FreeAddrs(t, 4)
	authAddr, apiAddr, tplAddr, whAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	env := []string{
		"BROKKR_CONFIG_WATCHER_ENABLED=false",
		"BROKKR__DATABASE__URL=" + pgtest.NewEmpty(t),
		"BROKKR__DATABASE__MIGRATE_ON_START=true",
		"BROKKR__REDIS__URL=" + redistest.URL(),
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=debug",
		"BROKKR__AUTH__ADDR=" + authAddr,
		"BROKKR__AUTH__URL=http://" + authAddr,
		"BROKKR__HTTP__ADDR=" + apiAddr,
		"BROKKR__TEMPLATING__ADDR=" + tplAddr,
		"BROKKR__TEMPLATING__URL=http://" + tplAddr,
		"BROKKR__WEBHOOK_DISPATCH__ADDR=" + whAddr,
		"BROKKR__BROKER__ADMIN_PAK_FILE=" + filepath.Join(dir, "admin.pak"),
		"BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE=true",
		"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY=" + randomHex(32),
		"BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS=1",
	}
	b := &broker{t: t, url: "http://" + apiAddr, bin: bin}
	b.procs = append(b.procs, start(t, bin, "templating", env, "serve"))
	testsupport.WaitReady(t, "http://"+tplAddr+"/readyz")
	b.procs = append(b.procs, start(t, bin, "auth", env, "serve"))
	testsupport.WaitReady(t, "http://"+authAddr+"/readyz")
	b.procs = append(b.procs, start(t, bin, "api", env, "serve"))
	testsupport.WaitReady(t, b.url+"/readyz")
	b.procs = append(b.procs, start(t, bin, "webhook-dispatch", env, "serve"))
	testsupport.WaitReady(t, "http://"+whAddr+"/readyz")
	pak, err := os.ReadFile(filepath.Join(dir, "admin.pak"))
	if err != nil || len(bytes.TrimSpace(pak)) == 0 {
		t.Fatalf("admin PAK: %v", err)
	}
	b.adminPAK = strings.TrimSpace(string(pak))
	return b
}

// call sends a REST request with pak and decodes the answer into out.
func (b *broker) call(pak, method, path string, body, out any) int {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, b.url+"/api/v1"+path, rd)
	req.Header.Set("Authorization", "Bearer "+pak)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			b.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

func (b *broker) must(want int, pak, method, path string, body, out any) {
	b.t.Helper()
	if got := b.call(pak, method, path, body, out); got != want {
		b.t.Fatalf("%s %s: %d, want %d", method, path, got, want)
	}
}

type created struct {
	ID string `json:"id"`
}

func (b *broker) registerAgent(name string) (id, pak string) {
	var out struct {
		Agent      created `json:"agent"`
		InitialPAK string  `json:"initial_pak"`
	}
	b.must(201, b.adminPAK, "POST", "/agents", map[string]string{"name": name, "cluster_name": "console-cluster"}, &out)
	return out.Agent.ID, out.InitialPAK
}

func (b *broker) deploy(pak, stackID, yaml string) string {
	var out created
	b.must(201, pak, "POST", "/stacks/"+stackID+"/deployment-objects", map[string]any{"yaml_content": yaml}, &out)
	return out.ID
}

// startAgent runs the agent binary for a registered agent.
func (b *broker) startAgent(name, pak, kubeconfig string) proc {
	b.t.Helper()
	health := testsupport.FreeAddr(b.t)
	_, port, _ := strings.Cut(health, ":")
	env := []string{
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=debug",
		"BROKKR__AGENT__BROKER_URL=" + b.url,
		"BROKKR__AGENT__PAK=" + pak,
		"BROKKR__AGENT__AGENT_NAME=" + name,
		"BROKKR__AGENT__CLUSTER_NAME=console-cluster",
		"BROKKR__AGENT__KUBECONFIG_PATH=" + kubeconfig,
		"BROKKR__AGENT__HEALTH_PORT=" + port,
		"BROKKR__AGENT__POLLING_INTERVAL=1",
		"BROKKR__AGENT__OUTBOX_DIR=" + filepath.Join(b.t.TempDir(), "outbox"),
		"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS=5",
		"BROKKR__AGENT__DRIFT_CHECK_INTERVAL=0",
		"BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS=5",
		"BROKKR__AGENT__DIAGNOSTICS_ENABLED=true",
		"BROKKR__AGENT__DIAGNOSTICS_POLL_INTERVAL=1",
		"BROKKR__AGENT__WORK_ORDERS_ENABLED=false",
	}
	p := start(b.t, b.bin, "agent", env, "start")
	testsupport.WaitReady(b.t, "http://"+health+"/readyz")
	return p
}

// shots saves numbered screenshots of the views.
type shots struct {
	t   *testing.T
	dir string
	n   int
}

func (s *shots) take(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var buf []byte
		if err := chromedp.CaptureScreenshot(&buf).Do(ctx); err != nil {
			return err
		}
		s.n++
		return os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), buf, 0o644)
	})
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Run(c, actions...); err != nil {
		var loc, body string
		_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.OuterHTML("main", &body, chromedp.ByQuery))
		t.Fatalf("%s: %v (at %s)\n%s", step, err, loc, body)
	}
}

func login(b *broker, pak string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.Navigate(b.url + "/ui/login"),
		chromedp.WaitVisible("#pak", chromedp.ByID),
		chromedp.SendKeys("#pak", pak, chromedp.ByID),
		chromedp.Click(`form.login button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible("#whoami", chromedp.ByID),
	}
}

const configMapYAML = `apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: %[1]s
data:
  color: %[2]s
`

func TestConsoleInTheBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end browser test skipped with -short")
	}
	chrome := chromiumPath(t)
	kube := testenv.ForTest(t)
	b := startBroker(t)

	shotDir := os.Getenv("BROKKR_CONSOLE_SCREENSHOTS")
	if shotDir == "" {
		shotDir = filepath.Join(os.TempDir(), "brokkr-console-screenshots")
	}
	if err := os.MkdirAll(shotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", shotDir)
	shot := &shots{t: t, dir: shotDir}

	// The fleet: one agent that will run, one that never does.
	agentID, agentPAK := b.registerAgent("edge-1")
	offlineID, offlinePAK := b.registerAgent("edge-offline")
	b.must(201, b.adminPAK, "POST", "/agents/"+offlineID+"/labels", "env:staging", nil)
	b.must(201, b.adminPAK, "POST", "/agents/"+agentID+"/labels", "env:prod", nil)
	var st created
	b.must(201, b.adminPAK, "POST", "/stacks", map[string]string{"name": "web", "description": "the web tier"}, &st)
	b.must(201, b.adminPAK, "POST", "/agents/"+agentID+"/targets", map[string]string{"stack_id": st.ID}, nil)
	ns := "console-" + randomHex(4)
	v1 := b.deploy(b.adminPAK, st.ID, fmt.Sprintf(configMapYAML, ns, "blue"))

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithErrorf(t.Logf))
	defer cancel()

	// Every URL the browser requests and the headers of every document.
	var mu sync.Mutex
	var urls []string
	docHeaders := map[string]network.Headers{}
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			urls = append(urls, e.Request.URL)
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				docHeaders[e.Response.URL] = e.Response.Headers
			}
		}
	})
	// Start the browser on ctx itself: a browser started by a Run on a
	// derived context (with a timeout) closes when that context ends.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting %s: %v", chrome, err)
	}
	run(t, ctx, "enable network events", network.Enable())

	// Log in as admin; the fleet shows edge-1 pending (never seen, its
	// object not applied).
	pendingRow := fmt.Sprintf(`tr[data-agent="%s"][data-state="pending"]`, agentID)
	healthyRow := fmt.Sprintf(`tr[data-agent="%s"][data-state="healthy"]`, agentID)
	run(t, ctx, "login page", chromedp.Navigate(b.url+"/ui/login"), chromedp.WaitVisible("#pak", chromedp.ByID), shot.take("login"))
	run(t, ctx, "admin login", login(b, b.adminPAK), chromedp.WaitVisible(pendingRow, chromedp.ByQuery), shot.take("fleet-pending"))

	// The agent starts, applies the object and reports SUCCESS; the open
	// page turns the row healthy through the live stream, without a reload.
	b.procs = append(b.procs, b.startAgent("edge-1", agentPAK, kube.Kubeconfig))
	began := time.Now()
	run(t, ctx, "agent turns healthy", chromedp.WaitVisible(healthyRow, chromedp.ByQuery), shot.take("fleet-healthy"))
	t.Logf("edge-1 showed healthy %v after the agent started", time.Since(began).Round(time.Millisecond))

	// On a phone the page reflows: nothing wider than the screen but the
	// tables, which scroll inside their box.
	var overflow bool
	run(t, ctx, "phone layout", chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(healthyRow, chromedp.ByQuery),
		chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow), shot.take("fleet-phone"),
		chromedp.EmulateViewport(1280, 900))
	if overflow {
		t.Error("the fleet page is wider than a 390 px screen")
	}

	// Agent view: why it receives the stack, the applied object, events.
	var agentText string
	run(t, ctx, "agent page", chromedp.Navigate(b.url+"/ui/agents/"+agentID), chromedp.WaitVisible("#agent-stacks", chromedp.ByID),
		chromedp.Text("#agent-stacks", &agentText, chromedp.ByID), shot.take("agent"))
	if !strings.Contains(agentText, "target") || !strings.Contains(agentText, "applied") {
		t.Errorf("agent stacks table: %q", agentText)
	}

	// Diagnostics: requested from the agent page, collected by the real
	// agent from the kube-apiserver, the result shown on the page.
	const diagDone = `#agent-diagnostics tr[data-status="completed"], #agent-diagnostics tr[data-status="failed"]`
	var diagText string
	run(t, ctx, "diagnostics", chromedp.Click(`form[action$="/diagnostics"] button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#agent-diagnostics tr[data-diagnostic]`, chromedp.ByQuery),
		chromedp.ActionFunc(func(ctx context.Context) error {
			// The result arrives with the agent's next poll; a submitted
			// result sends no change notification, so reload until it shows.
			for {
				var n int
				if err := chromedp.Evaluate(`document.querySelectorAll('`+diagDone+`').length`, &n).Do(ctx); err != nil {
					return err
				}
				if n > 0 {
					return nil
				}
				if err := chromedp.Sleep(time.Second).Do(ctx); err != nil {
					return err
				}
				if err := chromedp.Reload().Do(ctx); err != nil {
					return err
				}
			}
		}),
		chromedp.Click(`#agent-diagnostics details summary`, chromedp.ByQuery),
		chromedp.ScrollIntoView(`#agent-diagnostics`, chromedp.ByQuery),
		chromedp.Text(`#agent-diagnostics`, &diagText, chromedp.ByQuery), shot.take("agent-diagnostics"))
	if !strings.Contains(diagText, "completed") || !strings.Contains(diagText, "pods") || !strings.Contains(diagText, "Pod statuses") {
		t.Errorf("diagnostics result on the agent page: %q", diagText)
	}

	// Diff two versions from the stack page.
	v2 := b.deploy(b.adminPAK, st.ID, fmt.Sprintf(configMapYAML, ns, "green"))
	var diffText string
	run(t, ctx, "diff", chromedp.Navigate(b.url+"/ui/stacks/"+st.ID), chromedp.WaitVisible("#objects", chromedp.ByID),
		shot.take("stack"),
		chromedp.Click("#from-"+seqOf(t, b, v1), chromedp.ByID), chromedp.Click("#to-"+seqOf(t, b, v2), chromedp.ByID),
		chromedp.Click("#diff-button", chromedp.ByID), chromedp.WaitVisible("#diff", chromedp.ByID),
		chromedp.Text("#diff", &diffText, chromedp.ByID), shot.take("diff"))
	if !strings.Contains(diffText, "color: blue") || !strings.Contains(diffText, "color: green") {
		t.Errorf("diff: %q", diffText)
	}
	var yamlText string
	run(t, ctx, "object", chromedp.Navigate(b.url+"/ui/objects/"+v2), chromedp.WaitVisible("pre.yaml", chromedp.ByQuery),
		chromedp.Text("pre.yaml", &yamlText, chromedp.ByQuery))
	if !strings.Contains(yamlText, "color: green") {
		t.Errorf("YAML view: %q", yamlText)
	}

	// Cancel a work order (for the agent that never runs, so nobody claims it).
	var wo created
	b.must(201, b.adminPAK, "POST", "/work-orders", map[string]any{"work_type": "custom",
		"yaml_content":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: job, namespace: default}\n",
		"target_agent_ids": []string{offlineID}}, &wo)
	cancelBtn := fmt.Sprintf(`tr[data-order="%s"] button`, wo.ID)
	run(t, ctx, "work orders", chromedp.Navigate(b.url+"/ui/work-orders"), chromedp.WaitVisible(cancelBtn, chromedp.ByQuery),
		shot.take("work-orders"), chromedp.Click(cancelBtn, chromedp.ByQuery), chromedp.WaitVisible("p.flash", chromedp.ByQuery))
	if got := b.call(b.adminPAK, "GET", "/work-orders/"+wo.ID, nil, nil); got != 404 {
		t.Errorf("work order after cancel: %d", got)
	}

	// CSRF: a same-origin POST without the token is refused.
	var wo2 created
	b.must(201, b.adminPAK, "POST", "/work-orders", map[string]any{"work_type": "custom",
		"yaml_content":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: job2, namespace: default}\n",
		"target_agent_ids": []string{offlineID}}, &wo2)
	var csrfStatus int
	run(t, ctx, "csrf", chromedp.Evaluate(fmt.Sprintf(`fetch("/ui/work-orders/%s/cancel", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: ""}).then(r => r.status)`, wo2.ID), &csrfStatus,
		func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if csrfStatus != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", csrfStatus)
	}
	if got := b.call(b.adminPAK, "GET", "/work-orders/"+wo2.ID, nil, nil); got != 200 {
		t.Errorf("work order after a forged cancel: %d", got)
	}

	// CSP: an injected inline handler does not run.
	var injected bool
	run(t, ctx, "csp", chromedp.Evaluate(`document.body.insertAdjacentHTML("beforeend", '<img id="x" src="/ui/static/none.png" onerror="window.__inline = true">')`, nil),
		chromedp.Sleep(500*time.Millisecond), chromedp.Evaluate(`window.__inline === true`, &injected))
	if injected {
		t.Error("an inline event handler ran: CSP does not hold")
	}

	// Retry a dead delivery: the receiver refuses (400 → dead) until it is
	// fixed, then the console's Retry sends it again.
	var accept atomic.Bool
	var received atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		received.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	var sub created
	b.must(201, b.adminPAK, "POST", "/webhooks", map[string]any{"name": "ops-hook", "url": recv.URL + "/hook",
		"event_types": []string{"stack.created"}, "max_retries": 2}, &sub)
	var hooked created
	b.must(201, b.adminPAK, "POST", "/stacks", map[string]string{"name": "hooked"}, &hooked)
	var dead string
	deadline := time.Now().Add(30 * time.Second)
	for dead == "" && time.Now().Before(deadline) {
		var ds []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		b.must(200, b.adminPAK, "GET", "/webhooks/"+sub.ID+"/deliveries?status=dead", nil, &ds)
		if len(ds) > 0 {
			dead = ds[0].ID
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dead == "" {
		t.Fatal("no dead delivery")
	}
	accept.Store(true)
	retryBtn := fmt.Sprintf(`tr[data-delivery="%s"] button`, dead)
	run(t, ctx, "webhooks", chromedp.Navigate(b.url+"/ui/webhooks"), chromedp.WaitVisible("#webhooks", chromedp.ByID), shot.take("webhooks"),
		chromedp.Navigate(b.url+"/ui/webhooks/"+sub.ID), chromedp.WaitVisible(retryBtn, chromedp.ByQuery), shot.take("webhook-dead"),
		chromedp.Click(retryBtn, chromedp.ByQuery), chromedp.WaitVisible("p.flash", chromedp.ByQuery))
	// Delivery outcomes send no change notification (the view refreshes on
	// its 30 s tick), so the test reloads until the delivery succeeded.
	success := fmt.Sprintf(`tr[data-delivery="%s"][data-status="success"]`, dead)
	deadline = time.Now().Add(30 * time.Second)
	for {
		var n int
		run(t, ctx, "delivery status", chromedp.Navigate(b.url+"/ui/webhooks/"+sub.ID),
			chromedp.WaitVisible("#deliveries", chromedp.ByID),
			chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll('%s').length`, success), &n))
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retried delivery did not succeed")
		}
		time.Sleep(500 * time.Millisecond)
	}
	run(t, ctx, "webhook retried", shot.take("webhook-retried"))
	if received.Load() != 1 {
		t.Errorf("receiver got %d deliveries after the retry, want 1", received.Load())
	}

	// Audit log, filtered.
	run(t, ctx, "audit", chromedp.Navigate(b.url+"/ui/audit?action=webhook.*"), chromedp.WaitVisible("#audit", chromedp.ByID),
		shot.take("audit"))
	var auditText string
	run(t, ctx, "audit text", chromedp.Text("#audit", &auditText, chromedp.ByID))
	if !strings.Contains(auditText, "webhook.delivery_retried") {
		t.Errorf("audit filtered by webhook.*: %q", auditText)
	}
	for _, line := range strings.Split(auditText, "\n")[1:] {
		if f := strings.Split(line, "\t"); len(f) > 2 && !strings.HasPrefix(f[2], "webhook.") {
			t.Errorf("audit filtered by webhook.* shows action %q", f[2])
		}
	}

	// A generator signs in and sees only its stacks and templates.
	var gen struct {
		Generator created `json:"generator"`
		PAK       string  `json:"pak"`
	}
	b.must(201, b.adminPAK, "POST", "/generators", map[string]string{"name": "team-a"}, &gen)
	var genStack created
	b.must(201, gen.PAK, "POST", "/stacks", map[string]string{"name": "team-a-app"}, &genStack)
	var stacksText, navText, forbidden string
	run(t, ctx, "generator view", chromedp.Click(`.who button[type=submit]`, chromedp.ByQuery), chromedp.WaitVisible("#pak", chromedp.ByID),
		login(b, gen.PAK), chromedp.WaitVisible("#stacks", chromedp.ByID), chromedp.Text("#stacks", &stacksText, chromedp.ByID),
		chromedp.Text("header nav", &navText, chromedp.ByQuery), shot.take("generator-stacks"),
		chromedp.Navigate(b.url+"/ui/work-orders"), chromedp.Text("main", &forbidden, chromedp.ByQuery))
	if !strings.Contains(stacksText, "team-a-app") || strings.Contains(stacksText, "web") || strings.Contains(stacksText, "hooked") {
		t.Errorf("generator's stacks: %q", stacksText)
	}
	if strings.Contains(navText, "Fleet") || strings.Contains(navText, "Work orders") {
		t.Errorf("generator's nav: %q", navText)
	}
	if !strings.Contains(forbidden, "Admin access required") {
		t.Errorf("generator on /ui/work-orders: %q", forbidden)
	}

	// Rotating the generator's PAK ends its console session: the open page
	// (its live stream) goes to the sign-in form by itself, a reload stays
	// there, and the old PAK no longer signs in.
	var rotated struct {
		PAK string `json:"pak"`
	}
	var afterRotation, afterReload, oldPAKRefused string
	run(t, ctx, "session ends with its PAK", chromedp.Navigate(b.url+"/ui/stacks"), chromedp.WaitVisible("#stacks", chromedp.ByID),
		chromedp.Sleep(300*time.Millisecond), // the live stream is open
		chromedp.ActionFunc(func(context.Context) error {
			b.must(201, b.adminPAK, "POST", "/generators/"+gen.Generator.ID+"/rotate-pak", nil, &rotated)
			return nil
		}),
		chromedp.WaitVisible("#pak", chromedp.ByID), chromedp.Location(&afterRotation), shot.take("signed-out-after-rotation"),
		chromedp.Reload(), chromedp.WaitVisible("#pak", chromedp.ByID), chromedp.Location(&afterReload),
		chromedp.SendKeys("#pak", gen.PAK, chromedp.ByID), chromedp.Click(`form.login button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#login-error`, chromedp.ByQuery),
		chromedp.Text(`#login-error`, &oldPAKRefused, chromedp.ByQuery))
	run(t, ctx, "sign in with the new PAK", login(b, rotated.PAK), chromedp.WaitVisible("#stacks", chromedp.ByID))
	if !strings.HasSuffix(afterRotation, "/ui/login") || !strings.HasSuffix(afterReload, "/ui/login") {
		t.Errorf("after the rotation the page is at %q, after a reload at %q; want the sign-in page", afterRotation, afterReload)
	}
	if !strings.Contains(oldPAKRefused, "not valid") {
		t.Errorf("signing in with the rotated-out PAK: %q", oldPAKRefused)
	}

	// Where a PAK must never be: the browser's storage and cookies visible
	// to script, any URL requested, and every process's log.
	var storage string
	run(t, ctx, "storage", chromedp.Evaluate(`JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie`, &storage))
	paks := map[string]string{"admin": b.adminPAK, "generator": gen.PAK, "rotated generator": rotated.PAK, "agent": agentPAK,
		"offline agent": offlinePAK}
	for who, pak := range paks {
		if strings.Contains(storage, pak) {
			t.Errorf("the %s PAK is in browser storage", who)
		}
	}
	mu.Lock()
	for _, u := range urls {
		for who, pak := range paks {
			if strings.Contains(u, pak) {
				t.Errorf("the %s PAK is in a URL: %s", who, u)
			}
		}
	}
	for u, h := range docHeaders {
		if strings.HasPrefix(u, b.url+"/ui") {
			csp, _ := h["Content-Security-Policy"].(string)
			if csp == "" || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("%s: Content-Security-Policy %q", u, csp)
			}
		}
	}
	if len(urls) < 10 {
		t.Errorf("only %d URLs observed: the URL check proves little", len(urls))
	}
	mu.Unlock()
	cancel() // close the browser before reading the logs
	lines := 0
	for _, p := range b.procs {
		if p.name == "agent" {
			continue // the agent's own PAK is its configuration, not the console's
		}
		data, err := os.ReadFile(p.log)
		if err != nil {
			t.Fatal(err)
		}
		lines += bytes.Count(data, []byte("\n"))
		if p.name == "auth" {
			// The auth service prints a generated admin PAK once on stdout by
			// design (the bootstrap); that line is not a log of its use.
			data = bootstrapLine.ReplaceAll(data, nil)
		}
		for who, pak := range paks {
			if bytes.Contains(data, []byte(pak)) {
				t.Errorf("%s logged the %s PAK", p.name, who)
			}
		}
	}
	if lines < 20 {
		t.Errorf("only %d log lines: the log scan proves little", lines)
	}
}

var bootstrapLine = regexp.MustCompile(`(?m)^Admin PAK: \S+$`)

// seqOf returns an object's sequence id (the radio buttons' ids use it).
func seqOf(t *testing.T, b *broker, objectID string) string {
	t.Helper()
	var out struct {
		SequenceID int64 `json:"sequence_id"`
	}
	b.must(200, b.adminPAK, "GET", "/deployment-objects/"+objectID, nil, &out)
	return fmt.Sprint(out.SequenceID)
}
