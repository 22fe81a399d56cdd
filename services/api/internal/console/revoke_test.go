package console_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	redisadapter "github.com/brokkr-go/brokkr/pkg/adapters/redis"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
	"github.com/brokkr-go/brokkr/services/api/internal/console"
)

// openLive opens the live stream of b's session and returns a channel
// that receives, when the server ends it, whether it said "signedout".
func openLive(t *testing.T, b *browser) <-chan bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/ui/live", nil)
	resp, err := b.c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("live stream: %v %v", err, resp)
	}
	ended := make(chan bool, 1)
	go func() {
		defer resp.Body.Close()
		said := false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			said = said || sc.Text() == "event: signedout"
		}
		ended <- said
	}()
	// The stream is registered once its first bytes arrived.
	time.Sleep(100 * time.Millisecond)
	return ended
}

func waitEnded(t *testing.T, what string, ended <-chan bool) {
	t.Helper()
	select {
	case said := <-ended:
		if !said {
			t.Fatalf("%s: the live stream ended without telling the page", what)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: the live stream is still open", what)
	}
}

// signedOut asserts that b's next page lands on the sign-in form.
func signedOut(t *testing.T, what string, b *browser) {
	t.Helper()
	if p := b.do("GET", "/ui/stacks", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login" {
		t.Fatalf("%s: /ui/stacks answered %d %q, want the sign-in page", what, p.status, p.header.Get("Location"))
	}
	if p := b.do("GET", "/ui/stacks", nil, console.PartialHeader, "1"); p.status != http.StatusUnauthorized {
		t.Fatalf("%s: partial refresh answered %d, want 401", what, p.status)
	}
}

func TestSessionEndsWithItsPAK(t *testing.T) {
	env := apitest.New(t)

	// Rotation by an admin through the API: the generator's session and
	// stream end, the old PAK cannot sign in again, the new one can.
	gen := env.CreateGenerator("gen-rotated")
	b := newBrowser(t, env.URL)
	if res, _ := b.login(gen.PAK); res.status != http.StatusSeeOther {
		t.Fatalf("generator login: %d", res.status)
	}
	other := env.CreateGenerator("gen-bystander")
	bystander := newBrowser(t, env.URL)
	bystander.login(other.PAK)
	admin := newBrowser(t, env.URL)
	admin.login(env.AdminPAK)
	ended := openLive(t, b)
	adminLive := openLive(t, admin)

	var rotated struct {
		PAK string `json:"pak"`
	}
	env.Must(201, "POST", "/api/v1/generators/"+gen.ID+"/rotate-pak", env.AdminPAK, nil).JSON(t, &rotated)
	waitEnded(t, "after rotation", ended)
	signedOut(t, "after rotation", b)
	if res, _ := b.login(gen.PAK); res.status != http.StatusUnauthorized {
		t.Fatalf("login with the rotated-out PAK: %d", res.status)
	}
	if res, _ := b.login(rotated.PAK); res.status != http.StatusSeeOther {
		t.Fatalf("login with the new PAK: %d %s", res.status, res.body)
	}
	// Others' sessions and streams are untouched.
	if p := bystander.do("GET", "/ui/stacks", nil); p.status != 200 {
		t.Fatalf("another generator's session: %d", p.status)
	}
	if p := admin.do("GET", "/ui/", nil); p.status != 200 {
		t.Fatalf("the admin's session: %d", p.status)
	}
	select {
	case <-adminLive:
		t.Fatal("the admin's live stream ended with a generator's rotation")
	default:
	}

	// Self-rotation ends the generator's own session too.
	ended = openLive(t, b)
	var again struct {
		PAK string `json:"pak"`
	}
	env.Must(201, "POST", "/api/v1/generators/"+gen.ID+"/rotate-pak", rotated.PAK, nil).JSON(t, &again)
	waitEnded(t, "after self-rotation", ended)
	signedOut(t, "after self-rotation", b)

	// Deactivation, then deletion.
	b.login(again.PAK)
	ended = openLive(t, b)
	env.Must(200, "PUT", "/api/v1/generators/"+gen.ID, env.AdminPAK, map[string]any{"is_active": false})
	waitEnded(t, "after deactivation", ended)
	signedOut(t, "after deactivation", b)
	bystander.login(other.PAK) // new session, same PAK: both end
	ended = openLive(t, bystander)
	env.Must(204, "DELETE", "/api/v1/generators/"+other.ID, env.AdminPAK, nil)
	waitEnded(t, "after deletion", ended)
	signedOut(t, "after deletion", bystander)
}

// TestRevocationReachesEveryReplica: an invalidation published through
// Redis by another process (another api replica, or the auth service after
// rotating the admin PAK) ends the sessions here; a sign-in racing a
// revocation is refused.
func TestRevocationReachesEveryReplica(t *testing.T) {
	opt, err := goredis.ParseURL(apitest.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sessions := console.NewRedisSessions(rdb, "test_"+uuid.NewString(), time.Hour, 12*time.Hour)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	channel := "brokkr:test:auth:" + uuid.NewString()
	sub := redisadapter.NewAuthInvalidation(rdb, nil).OnChannel(channel).
		Subscribe(ctx, console.Revoker{Sessions: sessions, Log: log}, log)
	<-sub.Ready()

	hash := strings.Repeat("ab", 32)
	keep := strings.Repeat("cd", 32)
	var tokens []string
	for range 2 {
		tok, err := sessions.Create(ctx, console.Session{Role: identity.RoleAdmin, PAKHash: hash, CSRF: "x", Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tok)
	}
	kept, err := sessions.Create(ctx, console.Session{Role: identity.RoleAdmin, PAKHash: keep, CSRF: "x", Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Create(ctx, console.Session{Role: identity.RoleAdmin, CSRF: "x", Created: time.Now()}); err == nil {
		t.Fatal("a session without its PAK hash was stored")
	}

	// Another process publishes the invalidation.
	if err := redisadapter.NewAuthInvalidation(rdb, nil).OnChannel(channel).Invalidate(ctx, hash); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for _, tok := range tokens {
		for {
			_, err := sessions.Get(ctx, tok)
			if errors.Is(err, console.ErrNoSession) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session of the revoked PAK still live: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, err := sessions.Get(ctx, kept); err != nil {
		t.Fatalf("another PAK's session: %v", err)
	}
	// A sign-in that verified the PAK before the revocation stores its
	// session after it: refused.
	if _, err := sessions.Create(ctx, console.Session{Role: identity.RoleAdmin, PAKHash: hash, CSRF: "x", Created: time.Now()}); !errors.Is(err, console.ErrRevoked) {
		t.Fatalf("session of a just-revoked PAK: %v", err)
	}
}
