package paks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/authn"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/pak"
)

const (
	adminPAK  = "brokkr_BR3rVsDa_GK3QN7CDUzYc6iKgMkJ98M2WSimM5t6U8"
	adminHash = "4c697273df3d764cba950bb5c04368097685f09259f5bd880d892cf1ff9f4cdd"
)

func issue(t *testing.T) (string, string) {
	t.Helper()
	p, h, err := pak.Issuer{Cfg: pak.DefaultConfig}.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Reveal(), h
}

func TestVerifierLookupOrder(t *testing.T) {
	agentPAK, agentHash := issue(t)
	genPAK, genHash := issue(t)
	agentID, genID, adminGenID := uuid.New(), uuid.New(), uuid.New()
	lk := &memLookup{
		admin:  adminHash,
		agents: map[string]uuid.UUID{agentHash: agentID},
		// admin-generator shares the admin hash; admin wins.
		generators: map[string]uuid.UUID{genHash: genID, adminHash: adminGenID},
	}
	au := &journaltest.Recorder{}
	v := NewVerifier(lk, au, newMemCounter(), ThrottleConfig{FailureLimit: 100, FailureWindow: time.Minute}, nil)
	ctx := context.Background()
	cases := []struct {
		token string
		want  identity.Principal
	}{
		{adminPAK, identity.Admin},
		{"Bearer " + adminPAK, identity.Admin},
		{agentPAK, identity.Agent(agentID)},
		{"bearer " + genPAK, identity.Generator(genID)},
	}
	for _, c := range cases {
		got, err := v.Authenticate(ctx, c.token, authn.Client{IP: "1.2.3.4"})
		if err != nil || got != c.want {
			t.Errorf("%q: got %+v, %v; want %+v", c.token, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "Bearer foo", "a_b_c_d", "brokkr_BRxxxxxx_" + strings.Repeat("z", 33)} {
		if _, err := v.Authenticate(ctx, bad, authn.Client{IP: "1.2.3.4", UserAgent: "curl/8"}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	entries := au.Audits()
	if len(entries) != 4 {
		t.Fatalf("audit entries: %d", len(entries))
	}
	for i, e := range entries {
		if e.Action != audit.ActionAuthFailed || e.ActorType != "system" || e.ActorID != nil || e.ResourceType != ResourceTypePAK {
			t.Errorf("entry %d: %+v", i, e)
		}
		var d map[string]string
		if err := json.Unmarshal(e.Details, &d); err != nil || d["client_ip"] != "1.2.3.4" || d["reason"] == "" {
			t.Errorf("details %s", e.Details)
		}
		if e.IPAddress == nil || *e.IPAddress != "1.2.3.4" || e.UserAgent == nil || *e.UserAgent != "curl/8" {
			t.Errorf("client not recorded: %+v", e)
		}
		if strings.Contains(string(e.Details), "zzzz") {
			t.Error("token leaked into audit details")
		}
	}
	if r := entries[0]; !strings.Contains(string(r.Details), ReasonMalformed) {
		t.Errorf("first reason %s", r.Details)
	}
	if r := entries[3]; !strings.Contains(string(r.Details), ReasonUnknown) {
		t.Errorf("last reason %s", r.Details)
	}
}

func TestVerifierEmptyAdminRowNeverMatches(t *testing.T) {
	v := NewVerifier(&memLookup{}, &journaltest.Recorder{}, nil, ThrottleConfig{}, nil)
	// An empty admin hash must not match anything (no admin_role row yet).
	if _, err := v.Authenticate(context.Background(), adminPAK, authn.Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatal(err)
	}
}

// Issue item 3: failing attempts are throttled per client IP and per PAK
// public part; a PAK that verifies is never refused, whoever failed before
// from the same address.
func TestVerifierThrottling(t *testing.T) {
	agentPAK, agentHash := issue(t)
	lk := &memLookup{admin: adminHash, agents: map[string]uuid.UUID{agentHash: uuid.New()}}
	au := &journaltest.Recorder{}
	fc := newMemCounter()
	v := NewVerifier(lk, au, fc, ThrottleConfig{FailureLimit: 3, FailureWindow: 10 * time.Second}, nil)
	ctx := context.Background()
	nat := authn.Client{IP: "6.6.6.6"}

	for i := 0; i < 3; i++ {
		if _, err := v.Authenticate(ctx, "a_b_wrong", nat); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	for i := 0; i < 5; i++ {
		_, err := v.Authenticate(ctx, fmt.Sprintf("a_b%d_wrong", i), nat)
		if !errors.Is(err, domain.ErrThrottled) {
			t.Fatalf("throttled attempt %d: %v", i, err)
		}
		if d, ok := authn.RetryAfter(err); !ok || d <= 0 || d > 10*time.Second {
			t.Fatalf("retry after %v", d)
		}
	}
	// The valid agent and admin behind the same address still get in.
	for _, good := range []string{agentPAK, adminPAK} {
		if _, err := v.Authenticate(ctx, good, nat); err != nil {
			t.Fatalf("valid PAK refused after others failed from its address: %v", err)
		}
	}
	// limit failures plus exactly one throttled attempt are audited.
	entries := au.Audits()
	if len(entries) != 4 || !strings.Contains(string(entries[3].Details), ReasonThrottled) {
		t.Fatalf("audit: %d entries", len(entries))
	}
	// Other clients are unaffected.
	if _, err := v.Authenticate(ctx, "c_d_wrong", authn.Client{IP: "7.7.7.7"}); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatal(err)
	}
	// After the window the client recovers.
	fc.advance(10 * time.Second)
	if _, err := v.Authenticate(ctx, "a_b_wrong", nat); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Fatalf("after window: %v", err)
	}
}

// Guessing the long token of one key from rotating addresses (the XFF
// bypass of issue item 2, had it still worked) is throttled per key.
func TestVerifierThrottlesPerPAKAcrossAddresses(t *testing.T) {
	fc := newMemCounter()
	v := NewVerifier(&memLookup{}, &journaltest.Recorder{}, fc, ThrottleConfig{FailureLimit: 3, FailureWindow: time.Minute}, nil)
	var throttled int
	for i := 0; i < 10; i++ {
		_, err := v.Authenticate(context.Background(), "brokkr_BRvictim_guess"+strings.Repeat("x", i),
			authn.Client{IP: fmt.Sprintf("10.0.0.%d", i)})
		if errors.Is(err, domain.ErrThrottled) {
			throttled++
		}
	}
	if throttled != 7 {
		t.Fatalf("%d of 10 guesses from 10 addresses throttled, want 7", throttled)
	}
}

// Issue item 6: a PAK whose prefix or short token differs from the one
// issued does not authenticate, even with the right long token.
func TestVerifierChecksPublicPart(t *testing.T) {
	lk := &memLookup{}
	issuer := NewRecordingIssuer(pak.Issuer{Cfg: pak.DefaultConfig}, lk)
	p, hash, err := issuer.Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lk.agents = map[string]uuid.UUID{hash: uuid.New()}
	v := NewVerifier(lk, &journaltest.Recorder{}, nil, ThrottleConfig{}, nil)
	good := p.Reveal()
	if _, err := v.Authenticate(context.Background(), good, authn.Client{}); err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(good, "_", 3)
	for _, forged := range []string{"x_y_" + parts[2], parts[0] + "_BRother1_" + parts[2], "other_" + parts[1] + "_" + parts[2]} {
		if _, err := v.Authenticate(context.Background(), forged, authn.Client{}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("%s...: %v, want 401", forged[:12], err)
		}
	}
	// A hash without a record (pinned broker.pak_hash) is checked on the
	// long token alone, as the original does.
	delete(lk.shorts, hash)
	if _, err := v.Authenticate(context.Background(), "x_y_"+parts[2], authn.Client{}); err != nil {
		t.Fatalf("unrecorded hash: %v", err)
	}
}

func TestVerifierFailsOpenWithoutCounter(t *testing.T) {
	agentPAK, agentHash := issue(t)
	lk := &memLookup{agents: map[string]uuid.UUID{agentHash: uuid.New()}}
	au := &journaltest.Recorder{}
	fc := newMemCounter()
	fc.err = errors.New("redis down")
	v := NewVerifier(lk, au, fc, ThrottleConfig{FailureLimit: 1, FailureWindow: time.Second}, nil)
	for i := 0; i < 3; i++ {
		if _, err := v.Authenticate(context.Background(), "a_b_x", authn.Client{IP: "1.1.1.1"}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatal(err)
		}
	}
	if _, err := v.Authenticate(context.Background(), agentPAK, authn.Client{IP: "1.1.1.1"}); err != nil {
		t.Fatal(err)
	}
	if len(au.Audits()) != 3 {
		t.Fatalf("failures must still be audited: %d", len(au.Audits()))
	}
}

func TestVerifierLookupErrorIsUnavailable(t *testing.T) {
	lk := &memLookup{err: errors.New("db down")}
	fc := newMemCounter()
	v := NewVerifier(lk, &journaltest.Recorder{}, fc, ThrottleConfig{FailureLimit: 1, FailureWindow: time.Second}, nil)
	for i := 0; i < 3; i++ {
		if _, err := v.Authenticate(context.Background(), adminPAK, authn.Client{IP: "1.1.1.1"}); !errors.Is(err, domain.ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if n, _, _ := fc.Failures(context.Background(), "1.1.1.1"); n != 0 {
		t.Fatal("an outage counted as a client failure")
	}
}

func TestClip(t *testing.T) {
	if got := clip("a\x00b\xffc", 10); got != "abc" {
		t.Fatalf("%q", got)
	}
	if got := clip("ééé", 3); got != "é" {
		t.Fatalf("%q", got)
	}
}

func TestBootstrapGenerated(t *testing.T) {
	st := &memAdminStore{}
	var out bytes.Buffer
	file := filepath.Join(t.TempDir(), "keys", "admin.pak")
	a, err := NewAdmin(st, st, st, pak.Issuer{Cfg: pak.DefaultConfig}, nil, AdminConfig{PAKFile: file}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		did, err := a.Bootstrap(context.Background())
		if err != nil || did != (i == 0) {
			t.Fatalf("run %d: %v %v", i, did, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "Admin PAK: brokkr_BR") {
		t.Fatalf("output %q", out.String())
	}
	p := strings.TrimPrefix(lines[0], "Admin PAK: ")
	long, err := pak.ParseHeader(p)
	if err != nil || pak.Hash(long) != st.adminHash || st.genHash != st.adminHash || !st.initialized {
		t.Fatalf("stored state does not match printed PAK")
	}
	b, err := os.ReadFile(file)
	if err != nil || string(b) != p {
		t.Fatalf("file %q %v", b, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}

func TestBootstrapPinned(t *testing.T) {
	st := &memAdminStore{}
	var out bytes.Buffer
	a, err := NewAdmin(st, st, st, pak.Issuer{Cfg: pak.DefaultConfig}, nil, AdminConfig{PinnedHash: strings.ToUpper(adminHash)}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if did, err := a.Bootstrap(context.Background()); err != nil || !did {
		t.Fatal(did, err)
	}
	if st.adminHash != adminHash || out.Len() != 0 {
		t.Fatalf("hash %q out %q", st.adminHash, out.String())
	}
	for _, bad := range []string{"abc", strings.Repeat("g", 64), adminHash + "0"} {
		if _, err := NewAdmin(st, st, st, nil, nil, AdminConfig{PinnedHash: bad}, nil, nil); err == nil || !strings.Contains(err.Error(), "broker.pak_hash") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestRotateAdmin(t *testing.T) {
	st := &memAdminStore{}
	inv := &memInvalidator{}
	file := filepath.Join(t.TempDir(), "admin.pak")
	a, err := NewAdmin(st, st, st, pak.Issuer{Cfg: pak.DefaultConfig}, inv, AdminConfig{PinnedHash: adminHash, PAKFile: file}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bootstrap(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := a.RotateAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	long, _ := pak.ParseHeader(p.Reveal())
	if st.adminHash != pak.Hash(long) || st.genHash != st.adminHash {
		t.Fatal("rotation not stored")
	}
	if len(inv.hashes) != 1 || inv.hashes[0] != adminHash {
		t.Fatalf("invalidated %v", inv.hashes)
	}
	if b, _ := os.ReadFile(file); string(b) != p.Reveal() {
		t.Fatal("PAK file not rewritten")
	}
	last := st.Audits()[len(st.Audits())-1]
	if last.Action != audit.ActionPakRotated || last.ResourceType != AdminResourceType {
		t.Fatalf("audit %+v", last)
	}
}

func TestRotateBeforeFirstStartCountsAsBootstrap(t *testing.T) {
	st := &memAdminStore{}
	var out bytes.Buffer
	a, err := NewAdmin(st, st, st, pak.Issuer{Cfg: pak.DefaultConfig}, nil, AdminConfig{}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.RotateAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if did, err := a.Bootstrap(context.Background()); err != nil || did || out.Len() != 0 {
		t.Fatalf("bootstrap after rotate: %v %v %q", did, err, out.String())
	}
	long, _ := pak.ParseHeader(p.Reveal())
	if st.adminHash != pak.Hash(long) {
		t.Fatal("rotated PAK replaced")
	}
}
