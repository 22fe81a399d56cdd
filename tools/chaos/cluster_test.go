package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
	"github.com/brokkr-go/brokkr/tools/testenv"
)

// cluster is everything the suite runs: PostgreSQL, Redis, the five broker
// services and one real agent applying to the local kube-apiserver.
type cluster struct {
	t           *testing.T
	dir         string // logs and state; kept when the test fails
	pg          *proc
	redis       *proc
	svc         map[string]*proc
	dbURL       string
	apiURL      string
	adminPAK    string
	kube        *testenv.Env
	realAgentID string
	client      *http.Client
	// secrets are strings no log line may hold (PAKs, webhook secrets).
	secretsMu sync.Mutex
	secrets   []string
	// serverErrs are the api's answers of 500 and above (see call).
	serverErrsMu sync.Mutex
	serverErrs   []serverErr
}

// serverErr is one answer of 500 or above. The contract: a dependency
// that is down (or a process restarting) is 503 with Retry-After; any
// other 5xx is a bug and fails the suite.
type serverErr struct {
	at         time.Time
	method     string
	path       string
	status     int
	retryAfter string
	body       string
}

// bad says whether the answer breaks the contract.
func (e serverErr) bad() bool { return e.status != http.StatusServiceUnavailable || e.retryAfter == "" }

func (e serverErr) String() string {
	return fmt.Sprintf("%s %s answered %d (Retry-After %q) at %s: %s", e.method, e.path, e.status, e.retryAfter, e.at.Format("15:04:05.000"), e.body)
}

func (c *cluster) addSecret(s string) {
	c.secretsMu.Lock()
	defer c.secretsMu.Unlock()
	c.secrets = append(c.secrets, s)
}

// serviceOrder is the order in which the suite kills the services.
var serviceOrder = []string{"api", "auth", "templating", "webhook-dispatch", "work-order-scheduler", "agent"}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// baseEnv is the test process's environment without any Brokkr setting, so
// a developer's shell cannot change what the suite runs.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BROKKR_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := binaries(t)
	dir, err := os.MkdirTemp("", "brokkr-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, svc: map[string]*proc{}, client: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}}
	t.Cleanup(func() {
		for i := len(serviceOrder) - 1; i >= 0; i-- {
			if p := c.svc[serviceOrder[i]]; p != nil {
				p.stop()
			}
		}
		if c.redis != nil {
			c.redis.stop()
		}
		if c.pg != nil {
			c.pg.stop()
		}
		if t.Failed() || os.Getenv("BROKKR_CHAOS_KEEP") != "" {
			t.Logf("chaos: logs kept in %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	})

	// Private PostgreSQL and Redis: the suite restarts them, so never the
	// machine's shared ones.
	free := testsupport.FreePortsT(t, 2+len(serviceOrder))
	pgPort, redisPort := free[0], free[1]
	var adminURL string
	c.pg, adminURL = newPostgres(t, pgPort)
	if err := c.pg.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.pg.waitReady(c.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), adminURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE brokkr"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(context.Background())
	c.dbURL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/brokkr?sslmode=disable", pgPort)

	c.redis = newRedis(t, redisPort, dir)
	if err := c.redis.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.redis.waitReady(c.client, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	ports := map[string]int{}
	for i, n := range serviceOrder {
		ports[n] = free[2+i]
	}
	key := randHex(32)
	c.secrets = append(c.secrets, key)
	env := append(baseEnv(),
		"BROKKR__DATABASE__URL="+c.dbURL,
		"BROKKR__DATABASE__MAX_OPEN_CONNS=20",
		fmt.Sprintf("BROKKR__REDIS__URL=redis://127.0.0.1:%d/0", redisPort),
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=info",
		"BROKKR_CONFIG_WATCHER_ENABLED=false",
		fmt.Sprintf("BROKKR__HTTP__ADDR=127.0.0.1:%d", ports["api"]),
		fmt.Sprintf("BROKKR__AUTH__ADDR=127.0.0.1:%d", ports["auth"]),
		fmt.Sprintf("BROKKR__AUTH__URL=http://127.0.0.1:%d", ports["auth"]),
		fmt.Sprintf("BROKKR__TEMPLATING__ADDR=127.0.0.1:%d", ports["templating"]),
		fmt.Sprintf("BROKKR__TEMPLATING__URL=http://127.0.0.1:%d", ports["templating"]),
		fmt.Sprintf("BROKKR__SCHEDULER__ADDR=127.0.0.1:%d", ports["work-order-scheduler"]),
		fmt.Sprintf("BROKKR__WEBHOOK_DISPATCH__ADDR=127.0.0.1:%d", ports["webhook-dispatch"]),
		"BROKKR__BROKER__ADMIN_PAK_FILE="+filepath.Join(dir, "admin.pak"),
		// The receiver listens on 127.0.0.1 (loopback only, by the rules of
		// this machine), which the SSRF guard would refuse.
		"BROKKR__BROKER__WEBHOOK_ALLOW_PRIVATE=true",
		"BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY="+key,
		"BROKKR__BROKER__WEBHOOK_DELIVERY_INTERVAL_SECONDS=1",
		"BROKKR__SCHEDULER__MAINTENANCE_INTERVAL_SECONDS=2",
	)
	migrate := exec.Command(filepath.Join(bin, "api"), "migrate", "up")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("api migrate up: %v\n%s", err, out)
	}
	for _, n := range []string{"templating", "auth", "api", "work-order-scheduler", "webhook-dispatch"} {
		p := &proc{name: n, bin: filepath.Join(bin, n), args: []string{"serve"}, env: env,
			logPath: filepath.Join(dir, n+".log"), stdoutPath: filepath.Join(dir, n+".stdout"), readyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[n])}
		c.svc[n] = p
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.waitReady(c.client, 60*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	c.apiURL = fmt.Sprintf("http://127.0.0.1:%d", ports["api"])
	pak, err := os.ReadFile(filepath.Join(dir, "admin.pak"))
	if err != nil {
		t.Fatalf("admin PAK file: %v", err)
	}
	c.adminPAK = strings.TrimSpace(string(pak))
	c.secrets = append(c.secrets, c.adminPAK)

	// The real agent, applying to the local kube-apiserver.
	c.kube = testenv.ForTest(t)
	var created struct {
		Agent struct {
			ID string `json:"id"`
		} `json:"agent"`
		InitialPAK string `json:"initial_pak"`
	}
	c.mustCall("POST", "/api/v1/agents", c.adminPAK, map[string]string{"name": "real-agent", "cluster_name": "chaos"}, &created)
	c.secrets = append(c.secrets, created.InitialPAK)
	agentEnv := append(baseEnv(),
		"BROKKR__AGENT__BROKER_URL="+c.apiURL,
		"BROKKR__AGENT__PAK="+created.InitialPAK,
		"BROKKR__AGENT__AGENT_NAME=real-agent",
		"BROKKR__AGENT__CLUSTER_NAME=chaos",
		"BROKKR__AGENT__KUBECONFIG_PATH="+c.kube.Kubeconfig,
		fmt.Sprintf("BROKKR__AGENT__HEALTH_PORT=%d", ports["agent"]),
		"BROKKR__AGENT__OUTBOX_DIR="+filepath.Join(dir, "agent-outbox"),
		"BROKKR__AGENT__POLLING_INTERVAL=2",
		"BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS=5",
		"BROKKR__LOG__FORMAT=json",
		"BROKKR__LOG__LEVEL=info",
		"BROKKR_CONFIG_WATCHER_ENABLED=false",
	)
	ag := &proc{name: "agent", bin: filepath.Join(bin, "agent"), args: []string{"start"}, env: agentEnv,
		logPath: filepath.Join(dir, "agent.log"), stdoutPath: filepath.Join(dir, "agent.stdout"), readyURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", ports["agent"])}
	c.realAgentID = created.Agent.ID
	c.svc["agent"] = ag
	if err := ag.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := ag.waitReady(c.client, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// call sends one request to the api. err is set when no answer arrived.
func (c *cluster) call(method, path, pak string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.apiURL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if pak != "" {
		req.Header.Set("Authorization", "Bearer "+pak)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 {
		e := serverErr{at: time.Now(), method: method, path: path, status: resp.StatusCode,
			retryAfter: resp.Header.Get("Retry-After"), body: string(data[:min(len(data), 200)])}
		c.serverErrsMu.Lock()
		c.serverErrs = append(c.serverErrs, e)
		c.serverErrsMu.Unlock()
	}
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, data, nil
}

// mustCall is for set-up: it retries briefly and fails the test on a
// non-2xx answer.
func (c *cluster) mustCall(method, path, pak string, body, out any) {
	c.t.Helper()
	var (
		status int
		data   []byte
		err    error
	)
	for range 20 {
		status, data, err = c.call(method, path, pak, body)
		if err == nil && status < 500 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil || status/100 != 2 {
		c.t.Fatalf("%s %s: %d %v %s", method, path, status, err, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

// db opens a connection for the final checks (the test's oracle).
func (c *cluster) db(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, c.dbURL) }

// scanLogs fails the test when any process logged a secret.
func (c *cluster) scanLogs(t *testing.T) (files, lines int) {
	t.Helper()
	for _, n := range serviceOrder {
		data, err := os.ReadFile(c.svc[n].logPath)
		if err != nil {
			t.Errorf("%s log: %v", n, err)
			continue
		}
		files++
		lines += bytes.Count(data, []byte("\n"))
		c.secretsMu.Lock()
		secrets := append([]string(nil), c.secrets...)
		c.secretsMu.Unlock()
		// The log stream (stderr) never carries a secret, the bootstrap
		// admin PAK included: that goes to auth's stdout alone.
		for _, s := range secrets {
			if s != "" && bytes.Contains(data, []byte(s)) {
				t.Errorf("%s logged a secret (%d characters long)", n, len(s))
			}
		}
	}
	if lines == 0 {
		t.Error("no log lines captured: the secret scan proves nothing")
	}
	// auth's stdout holds the one-time bootstrap line and nothing else
	// (later starts print nothing); no other service writes to stdout.
	for _, n := range serviceOrder {
		data, err := os.ReadFile(c.svc[n].stdoutPath)
		if err != nil && !os.IsNotExist(err) {
			t.Errorf("%s stdout: %v", n, err)
		}
		want := ""
		if n == "auth" {
			want = "Admin PAK: " + c.adminPAK + "\n"
		}
		if string(data) != want {
			t.Errorf("%s wrote %d bytes to stdout, want only %q (logs go to stderr)", n, len(data), strings.ReplaceAll(want, c.adminPAK, "<admin PAK>"))
		}
	}
	return files, lines
}
