package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/httpclients/authclient"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/pkg/platform/testsupport"
)

const wellKnownHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"

// environ is a hermetic environment: only the given BROKKR__ variables.
func environ(kv map[string]string) func() []string {
	return func() []string {
		out := []string{"BROKKR__REDIS__URL=" + redistest.URL(), "BROKKR__LOG__LEVEL=warn"}
		for k, v := range kv {
			out = append(out, k+"="+v)
		}
		return out
	}
}

type cliEnv struct {
	env func() []string
	db  *sqlx.DB
}

func newCLIEnv(t *testing.T) cliEnv {
	t.Helper()
	url := pgtest.NewURL(t)
	redistest.New(t) // skip or fail early when Redis is absent
	db, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxOpenConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := cliEnv{env: environ(map[string]string{"BROKKR__DATABASE__URL": url, "BROKKR__BROKER__PAK_HASH": wellKnownHash}), db: db}
	// Bootstrap as `serve` would, so admin-generator exists.
	st := postgres.NewStore(db)
	a, err := paks.NewAdmin(st, st, postgres.NewPAKs(st), nil, nil, paks.AdminConfig{PinnedHash: wellKnownHash}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e cliEnv) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, e.env, &out, &errb)
	return code, out.String(), errb.String()
}

func (e cliEnv) verify(t *testing.T, p string) (identity.Principal, error) {
	t.Helper()
	st := postgres.NewStore(e.db)
	return paks.NewVerifier(postgres.NewPAKs(st), st, nil, paks.ThrottleConfig{}, nil).Authenticate(context.Background(), p, authn.Client{})
}

var (
	agentOut = regexp.MustCompile(`^Agent created successfully:\nID: ([0-9a-f-]{36})\nName: (.*)\nCluster: (.*)\nInitial PAK: (brokkr_BR\S+)\nRegistered with: (system \(fleet scope\).*)\n$`)
	genOut   = regexp.MustCompile(`^Generator created successfully:\nID: ([0-9a-f-]{36})\nName: (.*)\nInitial PAK: (brokkr_BR\S+)\n$`)
	newPAK   = regexp.MustCompile(`^New PAK: (brokkr_BR\S+)\n$`)
)

func TestCLICreateAgentPrintsAVerifyingPAK(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errOut := e.run(t, "create", "agent", "--name", "prod-1", "--cluster-name", "us-east-1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m := agentOut.FindStringSubmatch(out)
	if m == nil || m[2] != "prod-1" || m[3] != "us-east-1" {
		t.Fatalf("output %q", out)
	}
	id := uuid.MustParse(m[1])
	if p, err := e.verify(t, m[4]); err != nil || p != identity.Agent(id) {
		t.Fatalf("printed PAK does not verify: %v %v", p, err)
	}
	// Same journal as the API: audit entry and outbox event.
	var audits, events int
	_ = e.db.Get(&audits, `SELECT count(*) FROM audit_logs WHERE action = 'agent.created' AND resource_id = $1 AND actor_type = 'system'`, id)
	_ = e.db.Get(&events, `SELECT count(*) FROM outbox_events WHERE payload::text LIKE '%' || $1 || '%'`, id.String())
	if audits != 1 || events < 1 {
		t.Fatalf("audit %d, events %d", audits, events)
	}

	// The tutorials' spelling works too; the same name+cluster twice fails.
	if code, out, errOut := e.run(t, "create", "agent", "--name=prod-2", "--cluster_name=us-east-1"); code != 0 || agentOut.FindStringSubmatch(out) == nil {
		t.Fatalf("--cluster_name: %d %q %s", code, out, errOut)
	}
	if code, out, errOut := e.run(t, "create", "agent", "--name", "prod-1", "--cluster-name", "us-east-1"); code != 1 || out != "" || !strings.HasPrefix(errOut, "Error: ") {
		t.Fatalf("duplicate: %d %q %q", code, out, errOut)
	}
	if m[5] != "system (fleet scope)" {
		t.Fatalf("Registered with: %q", m[5])
	}

	// --generator-ids (0.9.1): registered in the same transaction, printed
	// after the fleet scope; an unknown id creates nothing.
	var g1, g2 uuid.UUID
	for i, g := range []*uuid.UUID{&g1, &g2} {
		if err := e.db.Get(g, `INSERT INTO generators (name) VALUES ($1) RETURNING id`, fmt.Sprintf("cli-gen-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut = e.run(t, "create", "agent", "--name", "prod-3", "--cluster-name", "c", "--generator-ids", g1.String()+","+g2.String())
	m = agentOut.FindStringSubmatch(out)
	if code != 0 || m == nil || m[5] != "system (fleet scope), "+g1.String()+", "+g2.String() {
		t.Fatalf("--generator-ids: %d %q %s", code, out, errOut)
	}
	var regs int
	_ = e.db.Get(&regs, `SELECT count(*) FROM agent_generator_registrations WHERE agent_id = $1`, m[1])
	if regs != 3 {
		t.Fatalf("registrations %d, want 3 (system and two generators)", regs)
	}
	code, out, errOut = e.run(t, "create", "agent", "--name", "prod-4", "--cluster-name", "c", "--generator-ids", uuid.NewString())
	var agentsNamed int
	_ = e.db.Get(&agentsNamed, `SELECT count(*) FROM agents WHERE name = 'prod-4'`)
	if code != 1 || out != "" || !strings.Contains(errOut, "Invalid generator ID") || agentsNamed != 0 {
		t.Fatalf("unknown generator: %d %q %q (%d agents)", code, out, errOut, agentsNamed)
	}
	if code, _, errOut := e.run(t, "create", "agent", "--name", "prod-5", "--cluster-name", "c", "--generator-ids", "nope"); code != 64 || !strings.Contains(errOut, `"nope" is not a UUID`) {
		t.Fatalf("malformed id: %d %q", code, errOut)
	}
}

func TestCLIGeneratorAndRotations(t *testing.T) {
	e := newCLIEnv(t)
	code, out, errOut := e.run(t, "create", "generator", "--name", "github-actions", "--description", "GitHub Actions deployment pipeline")
	m := genOut.FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] != "github-actions" {
		t.Fatalf("%d %q %s", code, out, errOut)
	}
	genID := uuid.MustParse(m[1])
	genPAK := m[3]
	var desc string
	if err := e.db.Get(&desc, `SELECT description FROM generators WHERE id = $1`, genID); err != nil || desc != "GitHub Actions deployment pipeline" {
		t.Fatalf("description %q %v", desc, err)
	}

	// rotate generator --uuid: the old PAK fails, the new one works.
	code, out, errOut = e.run(t, "rotate", "generator", "--uuid", genID.String())
	m = newPAK.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("%d %q %s", code, out, errOut)
	}
	if _, err := e.verify(t, genPAK); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("old generator PAK: %v", err)
	}
	if p, err := e.verify(t, m[1]); err != nil || p != identity.Generator(genID) {
		t.Fatalf("new generator PAK: %v %v", p, err)
	}

	// rotate agent <uuid> (positional).
	_, out, _ = e.run(t, "create", "agent", "--name", "a", "--cluster-name", "c")
	am := agentOut.FindStringSubmatch(out)
	if am == nil {
		t.Fatalf("create agent: %q", out)
	}
	code, out, errOut = e.run(t, "rotate", "agent", am[1])
	m = newPAK.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("%d %q %s", code, out, errOut)
	}
	if _, err := e.verify(t, am[4]); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("old agent PAK: %v", err)
	}
	if p, err := e.verify(t, m[1]); err != nil || p != identity.Agent(uuid.MustParse(am[1])) {
		t.Fatalf("new agent PAK: %v %v", p, err)
	}

	// rotate admin: a new admin PAK, the well-known one stops working.
	code, out, errOut = e.run(t, "rotate", "admin")
	m = newPAK.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("%d %q %s", code, out, errOut)
	}
	if p, err := e.verify(t, m[1]); err != nil || p != identity.Admin {
		t.Fatalf("new admin PAK: %v %v", p, err)
	}
	if _, err := e.verify(t, "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("old admin PAK: %v", err)
	}

	// An unknown id is a failure (1), not a usage error.
	code, out, errOut = e.run(t, "rotate", "agent", "--uuid", uuid.NewString())
	if code != 1 || out != "" || !strings.Contains(errOut, "Error: Agent not found") {
		t.Fatalf("%d %q %q", code, out, errOut)
	}
}

func TestCLIUsageAndConfigErrors(t *testing.T) {
	env := environ(map[string]string{"BROKKR__DATABASE__URL": "postgres://nobody@127.0.0.1:1/none"})
	cases := []struct {
		args []string
		env  func() []string
		code int
	}{
		{[]string{"bogus"}, env, lifecycle.ExitConfig},
		{[]string{"create"}, env, lifecycle.ExitConfig},
		{[]string{"create", "agent", "--name", "x"}, env, lifecycle.ExitConfig},
		{[]string{"create", "agent", "--bogus"}, env, lifecycle.ExitConfig},
		{[]string{"create", "generator"}, env, lifecycle.ExitConfig},
		{[]string{"rotate", "agent"}, env, lifecycle.ExitConfig},
		{[]string{"rotate", "agent", "not-a-uuid"}, env, lifecycle.ExitConfig},
		{[]string{"rotate", "agent", uuid.NewString(), "extra"}, env, lifecycle.ExitConfig},
		{[]string{"rotate", "admin", "extra"}, env, lifecycle.ExitConfig},
		{[]string{"rotate", "stack"}, env, lifecycle.ExitConfig},
		{[]string{"serve", "extra"}, env, lifecycle.ExitConfig},
		// Bad configuration names the key and exits 64.
		{[]string{"rotate", "admin"}, environ(map[string]string{"BROKKR__BROKER__PAK_HASH": "nothex"}), lifecycle.ExitConfig},
		{[]string{"serve"}, environ(map[string]string{"BROKKR__PAK__PREFIX": "a_b"}), lifecycle.ExitConfig},
		// Valid usage, unreachable database.
		{[]string{"rotate", "admin"}, env, lifecycle.ExitUnavailable},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if code := run(context.Background(), c.args, c.env, &out, &errb); code != c.code || out.Len() != 0 {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q", c.args, code, c.code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	run(context.Background(), []string{"rotate", "admin"}, environ(map[string]string{"BROKKR__BROKER__PAK_HASH": "nothex"}), &out, &errb)
	if !strings.Contains(errb.String(), "broker.pak_hash") {
		t.Errorf("config error does not name the key: %q", errb.String())
	}
	if code := run(context.Background(), []string{"help"}, env, &out, &errb); code != 0 {
		t.Errorf("help: %d", code)
	}
}

func TestServeBootstrapsMigratesAndVerifies(t *testing.T) {
	url := pgtest.NewEmpty(t) // migrate_on_start does the schema
	redistest.New(t)
	addr := testsupport.FreeAddr(t)
	pakFile := filepath.Join(t.TempDir(), "keys", "admin.pak")
	env := environ(map[string]string{
		"BROKKR__DATABASE__URL":              url,
		"BROKKR__DATABASE__MIGRATE_ON_START": "true",
		"BROKKR__AUTH__ADDR":                 addr,
		"BROKKR__BROKER__ADMIN_PAK_FILE":     pakFile,
		"BROKKR__DATABASE__MAX_OPEN_CONNS":   "4",
		"BROKKR__LOG__LEVEL":                 "info",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testsupport.SyncBuffer
	exit := testsupport.Go(func() int { return run(ctx, []string{"serve"}, env, &out, &errb) })

	base := "http://" + addr
	if err := testsupport.PollReady(ctx, base+"/readyz", 30*time.Second, exit.Done()); errors.Is(err, testsupport.ErrExited) {
		t.Fatalf("serve exited %d: %s", exit.Code(), errb.String())
	} else if err != nil {
		t.Fatalf("auth never became ready: %v\n%s", err, out.String())
	}

	printed := regexp.MustCompile(`(?m)^Admin PAK: (brokkr_BR\S+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(printed) != 1 {
		t.Fatalf("want the admin PAK printed once, stdout:\n%s", out.String())
	}
	adminPAK := printed[0][1]
	// stdout carries that one line and nothing else: the structured logs
	// go to stderr, so a pipeline reading the log stream never sees it.
	if out.String() != "Admin PAK: "+adminPAK+"\n" || !strings.Contains(errb.String(), "admin PAK generated") {
		t.Fatalf("stdout must hold only the bootstrap line, logs go to stderr; stdout:\n%s", out.String())
	}
	b, err := os.ReadFile(pakFile)
	if err != nil || string(b) != adminPAK {
		t.Fatalf("pak file %q %v", b, err)
	}
	if fi, _ := os.Stat(pakFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("pak file mode %v", fi.Mode())
	}
	// The PAK appears nowhere else in the output (no secret in a log line).
	if strings.Count(out.String()+errb.String(), adminPAK) != 1 {
		t.Fatal("admin PAK leaked into the logs")
	}

	client := authclient.New(base)
	if p, err := client.Authenticate(ctx, "Bearer "+adminPAK, authn.Client{IP: "192.0.2.1"}); err != nil || p != identity.Admin {
		t.Fatalf("admin PAK: %v %v", p, err)
	}
	if _, err := client.Authenticate(ctx, "garbage", authn.Client{IP: "192.0.2.1"}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatal(err)
	}
	if _, _, err := client.Issue(ctx); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(mb), "brokkr_http_requests_total") || !strings.Contains(string(mb), "brokkr_auth_verifications_total") {
		t.Fatalf("metrics:\n%s", mb)
	}

	cancel()
	if code := exit.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after a clean stop: %s", code, errb.String())
	}

	// A second start on the same database prints nothing.
	ctx2, cancel2 := context.WithCancel(context.Background())
	var out2 testsupport.SyncBuffer
	exit2 := testsupport.Go(func() int { return run(ctx2, []string{"serve"}, env, &out2, &errb) })
	if err := testsupport.PollReady(ctx2, base+"/healthz", 30*time.Second, exit2.Done()); err != nil {
		t.Fatalf("second start never listened: %v", err)
	}
	cancel2()
	exit2.Wait(t, 30*time.Second)
	if strings.Contains(out2.String(), "Admin PAK") {
		t.Fatalf("second start printed a PAK:\n%s", out2.String())
	}
}
