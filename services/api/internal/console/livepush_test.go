package console_test

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

// liveEvents opens b's live stream and returns a channel of the times its
// "change" events arrive.
func liveEvents(t *testing.T, b *browser) <-chan time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", b.base+"/ui/live", nil)
	resp, err := b.c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("live stream: %v %v", err, resp)
	}
	out := make(chan time.Time, 16)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: change" {
				out <- time.Now()
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	return out
}

// quiet drains events and reports whether none arrived for d.
func quiet(events <-chan time.Time, d time.Duration) bool {
	timer := time.After(d)
	for {
		select {
		case <-events:
			return false
		case <-timer:
			return true
		}
	}
}

func drain(events <-chan time.Time) {
	for {
		select {
		case <-events:
		case <-time.After(1500 * time.Millisecond):
			return
		}
	}
}

// A heartbeat that changes what the fleet shows (an agent seen for the
// first time, or again after being stale) reaches open pages within a
// couple of seconds; steady heartbeats push nothing (the page renders ages
// relative to the stamp, and the 30 s tick moves them).
func TestHeartbeatTransitionsArePushed(t *testing.T) {
	env := apitest.New(t)
	b := newBrowser(t, env.URL)
	b.login(env.AdminPAK)
	ag := env.CreateAgent("beating", "c1")
	row := regexp.MustCompile(`data-agent="` + ag.ID + `" data-state="([a-z]+)"`)
	state := func() string {
		m := row.FindStringSubmatch(b.do("GET", "/ui/?q=beating", nil, "X-Console-Partial", "1").body)
		if m == nil {
			t.Fatal("agent row missing")
		}
		return m[1]
	}
	events := liveEvents(t, b)
	drain(events)

	beat := func() time.Time {
		sent := time.Now()
		env.Must(200, "POST", "/api/v1/agents/"+ag.ID+"/heartbeat", ag.PAK, nil)
		return sent
	}
	pushed := func(what string, sent time.Time) {
		t.Helper()
		select {
		case at := <-events:
			if d := at.Sub(sent); d > 3*time.Second {
				t.Errorf("%s pushed after %v", what, d)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not pushed", what)
		}
	}

	// Seen for the first time.
	pushed("the first heartbeat", beat())
	if s := state(); s == "stale" || s == "inactive" {
		t.Fatalf("after the first heartbeat: %s", s)
	}
	drain(events)
	// Steady heartbeats push nothing.
	beat()
	beat()
	if !quiet(events, 2*time.Second) {
		t.Error("a steady heartbeat was pushed")
	}
	// Stale, then seen again: pushed.
	if _, err := env.Store.DB().ExecContext(context.Background(),
		`UPDATE agents SET last_heartbeat = now() - interval '10 minutes' WHERE id = $1`, ag.ID); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != "stale" {
		t.Fatalf("after 10 minutes without a heartbeat: %s", s)
	}
	drain(events)
	pushed("a heartbeat after being stale", beat())
	if s := state(); s == "stale" {
		t.Fatal("still stale after the heartbeat")
	}
}
