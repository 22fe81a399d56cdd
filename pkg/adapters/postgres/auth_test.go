package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/adapters/redis/redistest"
	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/paks"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

const (
	wellKnownPAK  = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	wellKnownHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"
)

func newPAK(t *testing.T) (string, string) {
	t.Helper()
	p, h, err := pak.Issuer{Cfg: pak.DefaultConfig}.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Reveal(), h
}

func insertAgent(t *testing.T, db *sqlx.DB, name, hash string, deleted bool) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	q := `INSERT INTO agents (name, cluster_name, pak_hash) VALUES ($1, 'c', $2) RETURNING id`
	if deleted {
		q = `INSERT INTO agents (name, cluster_name, pak_hash, deleted_at) VALUES ($1, 'c', $2, now()) RETURNING id`
	}
	if err := db.Get(&id, q, name, hash); err != nil {
		t.Fatal(err)
	}
	return id
}

func insertGenerator(t *testing.T, db *sqlx.DB, name, hash string, deleted bool) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	q := `INSERT INTO generators (name, pak_hash) VALUES ($1, $2) RETURNING id`
	if deleted {
		q = `INSERT INTO generators (name, pak_hash, deleted_at) VALUES ($1, $2, now()) RETURNING id`
	}
	if err := db.Get(&id, q, name, hash); err != nil {
		t.Fatal(err)
	}
	return id
}

func newAdmin(t *testing.T, st *postgres.Store, cfg paks.AdminConfig, out *bytes.Buffer) *paks.Admin {
	t.Helper()
	a, err := paks.NewAdmin(st, st, postgres.NewPAKs(st), pak.Issuer{Cfg: pak.DefaultConfig}, nil, cfg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestVerifyAgainstPostgres(t *testing.T) {
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	if _, err := newAdmin(t, st, paks.AdminConfig{PinnedHash: wellKnownHash}, nil).Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	agentPAK, agentHash := newPAK(t)
	genPAK, genHash := newPAK(t)
	deadPAK, deadHash := newPAK(t)
	deadGenPAK, deadGenHash := newPAK(t)
	agentID := insertAgent(t, db, "a1", agentHash, false)
	insertAgent(t, db, "a-dead", deadHash, true)
	genID := insertGenerator(t, db, "g1", genHash, false)
	insertGenerator(t, db, "g-dead", deadGenHash, true)
	insertAgent(t, db, "a-nohash", "", false) // an agent mid-creation never matches

	v := paks.NewVerifier(postgres.NewPAKs(st), st, nil, paks.ThrottleConfig{}, nil)
	ok := map[string]identity.Principal{
		wellKnownPAK:           identity.Admin, // admin wins over admin-generator (same hash)
		"Bearer " + agentPAK:   identity.Agent(agentID),
		genPAK:                 identity.Generator(genID),
		"x_y_" + agentPAK[16:]: identity.Agent(agentID),
	}
	for tok, want := range ok {
		got, err := v.Authenticate(ctx, tok, authn.Client{IP: "10.1.1.1"})
		if err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", tok, got, err, want)
		}
	}
	for _, bad := range []string{deadPAK, deadGenPAK, "garbage", "Bearer foo", "a_b_", "a_b_" + strings.Repeat("1", 40)} {
		if _, err := v.Authenticate(ctx, bad, authn.Client{IP: "10.1.1.1", UserAgent: "test"}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Every failure is audited, as system, without the token.
	var rows []struct {
		ActorType string  `db:"actor_type"`
		Details   string  `db:"details"`
		IP        *string `db:"ip_address"`
		UA        *string `db:"user_agent"`
	}
	if err := db.Select(&rows, `SELECT actor_type, details::text AS details, ip_address, user_agent
		FROM audit_logs WHERE action = 'auth.failed' ORDER BY timestamp`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 {
		t.Fatalf("auth.failed entries: %d", len(rows))
	}
	for _, r := range rows {
		if r.ActorType != "system" || r.IP == nil || *r.IP != "10.1.1.1" || r.UA == nil || *r.UA != "test" ||
			!strings.Contains(r.Details, `"client_ip": "10.1.1.1"`) || strings.Contains(r.Details, deadPAK[16:]) {
			t.Errorf("entry %+v", r)
		}
	}
}

func TestLookupUsesPartialIndexes(t *testing.T) {
	db := pgtest.New(t)
	// Enough rows for the planner to prefer the index; then check the plan.
	if _, err := db.Exec(`INSERT INTO agents (name, cluster_name, pak_hash)
		SELECT 'a' || g, 'c', md5(g::text) || md5(g::text) FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO generators (name, pak_hash)
		SELECT 'g' || g, md5(g::text) || md5(g::text) FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE agents; ANALYZE generators`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	if err := db.Select(&plan, `EXPLAIN SELECT
		(SELECT id FROM agents WHERE pak_hash = $1 AND deleted_at IS NULL AND pak_hash <> '' ORDER BY created_at LIMIT 1),
		(SELECT id FROM generators WHERE pak_hash = $1 AND deleted_at IS NULL AND pak_hash IS NOT NULL ORDER BY created_at LIMIT 1)`,
		wellKnownHash); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "idx_agents_pak_hash") || !strings.Contains(text, "idx_generators_pak_hash") {
		t.Fatalf("lookup does not use the pak_hash indexes:\n%s", text)
	}
}

func TestBootstrapGeneratesOnceAndWritesFile(t *testing.T) {
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "brokkr", "admin.pak")
	var out bytes.Buffer
	a := newAdmin(t, st, paks.AdminConfig{PAKFile: file}, &out)
	for i := 0; i < 2; i++ {
		did, err := a.Bootstrap(ctx)
		if err != nil || did != (i == 0) {
			t.Fatalf("run %d: %v %v", i, did, err)
		}
	}
	// A second process starting later prints nothing either.
	var out2 bytes.Buffer
	if did, err := newAdmin(t, postgres.NewStore(db), paks.AdminConfig{PAKFile: file}, &out2).Bootstrap(ctx); err != nil || did || out2.Len() != 0 {
		t.Fatalf("later start: %v %v %q", did, err, out2.String())
	}
	if strings.Count(out.String(), "Admin PAK: ") != 1 {
		t.Fatalf("output %q", out.String())
	}
	printed := strings.TrimSpace(strings.TrimPrefix(out.String(), "Admin PAK: "))
	b, err := os.ReadFile(file)
	if err != nil || string(b) != printed {
		t.Fatalf("file %q (%v), printed %q", b, err, printed)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	p, err := paks.NewVerifier(postgres.NewPAKs(st), st, nil, paks.ThrottleConfig{}, nil).Authenticate(ctx, printed, authn.Client{})
	if err != nil || p != identity.Admin {
		t.Fatalf("printed PAK does not verify: %v %v", p, err)
	}
	assertAdminRows(t, db, pakHash(t, printed))
}

func TestBootstrapConcurrentReplicas(t *testing.T) {
	url := pgtest.NewURL(t)
	ctx := context.Background()
	const replicas = 6
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		outs []string
		dids int
	)
	for i := 0; i < replicas; i++ {
		db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxOpenConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			st := postgres.NewStore(db)
			a, err := paks.NewAdmin(st, st, postgres.NewPAKs(st), pak.Issuer{Cfg: pak.DefaultConfig}, nil, paks.AdminConfig{}, &out, nil)
			if err != nil {
				t.Error(err)
				return
			}
			did, err := a.Bootstrap(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if did {
				dids++
			}
			if out.Len() > 0 {
				outs = append(outs, out.String())
			}
		}()
	}
	wg.Wait()
	if dids != 1 || len(outs) != 1 {
		t.Fatalf("%d replicas bootstrapped, %d printed", dids, len(outs))
	}
	db, err := postgres.Open(ctx, postgres.Options{URL: url, MaxOpenConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	assertAdminRows(t, db, pakHash(t, strings.TrimSpace(strings.TrimPrefix(outs[0], "Admin PAK: "))))
}

func TestBootstrapPinnedHashAndRotateAdmin(t *testing.T) {
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	var out bytes.Buffer
	client := redistest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the client closes
	channel := redistest.Namespace(t, client) + "auth"
	cache := authn.NewCache(paks.NewVerifier(postgres.NewPAKs(st), st, nil, paks.ThrottleConfig{}, nil), time.Hour, 0)
	sub := redis.NewAuthInvalidation(client, nil).OnChannel(channel).Subscribe(ctx, cache, nil)
	<-sub.Ready()

	a, err := paks.NewAdmin(st, st, postgres.NewPAKs(st), pak.Issuer{Cfg: pak.DefaultConfig}, redis.NewAuthInvalidation(client, nil).OnChannel(channel),
		paks.AdminConfig{PinnedHash: wellKnownHash}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if did, err := a.Bootstrap(ctx); err != nil || !did || out.Len() != 0 {
		t.Fatalf("%v %v %q", did, err, out.String())
	}
	assertAdminRows(t, db, wellKnownHash)
	if p, err := cache.Authenticate(ctx, wellKnownPAK, authn.Client{}); err != nil || p != identity.Admin {
		t.Fatal(p, err)
	}

	newPAK, err := a.RotateAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertAdminRows(t, db, pakHash(t, newPAK.Reveal()))
	// The old PAK stops working at once, even though it was cached.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := cache.Authenticate(ctx, wellKnownPAK, authn.Client{})
		if errors.Is(err, domain.ErrUnauthenticated) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old admin PAK still accepted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p, err := cache.Authenticate(ctx, newPAK.Reveal(), authn.Client{}); err != nil || p != identity.Admin {
		t.Fatal(p, err)
	}
	var actions []string
	if err := db.Select(&actions, `SELECT action FROM audit_logs WHERE resource_type = 'admin_role' ORDER BY timestamp`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(actions, ",") != "pak.created,pak.rotated" {
		t.Fatalf("audit %v", actions)
	}
}

func TestSetAdminHashRecreatesMissingAdminGenerator(t *testing.T) {
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	ctx := context.Background()
	prev, err := postgres.NewPAKs(st).SetAdminHash(ctx, wellKnownHash)
	if err != nil || prev != "" {
		t.Fatal(prev, err)
	}
	if _, err := db.Exec(`UPDATE generators SET deleted_at = now() WHERE name = 'admin-generator'`); err != nil {
		t.Fatal(err)
	}
	_, h := newPAK(t)
	if prev, err = postgres.NewPAKs(st).SetAdminHash(ctx, h); err != nil || prev != wellKnownHash {
		t.Fatal(prev, err)
	}
	assertAdminRows(t, db, h)
}

func TestVerifyThrottlingWithRedis(t *testing.T) {
	db := pgtest.New(t)
	st := postgres.NewStore(db)
	client := redistest.New(t)
	fc := redis.NewFailureCounter(client, redistest.Namespace(t, client)+"fail:")
	ctx := context.Background()
	agentPAK, agentHash := newPAK(t)
	insertAgent(t, db, "a1", agentHash, false)
	v := paks.NewVerifier(postgres.NewPAKs(st), st, fc, paks.ThrottleConfig{FailureLimit: 3, FailureWindow: time.Second}, nil)
	bad := authn.Client{IP: "192.0.2.7"}
	for i := 0; i < 3; i++ {
		if _, err := v.Authenticate(ctx, "a_b_nope", bad); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatal(i, err)
		}
	}
	for i := 0; i < 10; i++ {
		if _, err := v.Authenticate(ctx, fmt.Sprintf("a_b_nope%d", i), bad); !errors.Is(err, domain.ErrThrottled) {
			t.Fatal(i, err)
		}
		// A valid PAK from the same address is never refused (issue 10 item 3).
		if _, err := v.Authenticate(ctx, agentPAK, bad); err != nil {
			t.Fatal(i, err)
		}
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM audit_logs WHERE action = 'auth.failed' AND ip_address = '192.0.2.7'`); err != nil || n != 4 {
		t.Fatalf("audit entries %d (%v), want limit+1", n, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := v.Authenticate(ctx, "c_d_nope", bad); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("not recovered after the window: %v", err)
	}
}

func pakHash(t *testing.T, p string) string {
	t.Helper()
	long, err := pak.ParseHeader(p)
	if err != nil {
		t.Fatalf("%q: %v", p, err)
	}
	return pak.Hash(long)
}

func assertAdminRows(t *testing.T, db *sqlx.DB, hash string) {
	t.Helper()
	var admins, inits int
	var genHashes []string
	if err := db.Get(&admins, `SELECT count(*) FROM admin_role WHERE pak_hash = $1`, hash); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&inits, `SELECT count(*) FROM app_initialization`); err != nil {
		t.Fatal(err)
	}
	if err := db.Select(&genHashes, `SELECT pak_hash FROM generators
		WHERE name = 'admin-generator' AND deleted_at IS NULL AND description = 'Linked to Admin PAK'`); err != nil {
		t.Fatal(err)
	}
	var total int
	_ = db.Get(&total, `SELECT count(*) FROM admin_role`)
	if admins != 1 || total != 1 || len(genHashes) != 1 || genHashes[0] != hash {
		t.Fatalf("admin rows %d/%d, admin-generator hashes %v (want %s)", admins, total, genHashes, hash)
	}
	_ = inits
}
