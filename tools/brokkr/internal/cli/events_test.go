package cli

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// events --watch prints each event once, oldest first, and paces its polls
// (backing off while nothing arrives) instead of spinning.
func TestEventsWatch(t *testing.T) {
	f := newFake("admin")
	agentID := uuid.NewString()
	f.agents = []map[string]any{{"id": agentID, "name": "edge-1", "cluster_name": "edge", "status": "ACTIVE",
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}}
	var polls atomic.Int32
	ev := func(n int, status string) map[string]any {
		ts := time.Date(2026, 1, 1, 0, 0, n, 0, time.UTC).Format(time.RFC3339)
		return map[string]any{"id": uuid.NewString(), "agent_id": agentID, "deployment_object_id": uuid.NewString(),
			"event_type": "DEPLOY", "status": status, "message": "m" + string(rune('0'+n)), "created_at": ts, "updated_at": ts}
	}
	first, second := ev(1, "SUCCESS"), ev(2, "FAILURE")
	f.onEvents = func(f *fakeBroker) {
		n := polls.Add(1)
		switch n {
		case 1:
			f.events = []map[string]any{first}
		case 3:
			f.events = []map[string]any{second, first} // newest first, as the broker lists
		}
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var out bytes.Buffer
	a := &App{Out: &out, Err: &out, Now: time.Now, PollMinimum: 20 * time.Millisecond}
	c, err := api.New(api.Options{BrokerURL: srv.URL, PAK: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := a.events(ctx, c, getFlags{out: "table"}, true); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Count(s, "SUCCESS") != 1 || strings.Count(s, "FAILURE") != 1 || strings.Index(s, "SUCCESS") > strings.Index(s, "FAILURE") ||
		!strings.Contains(s, "edge-1") || strings.Count(s, "TIME") != 1 {
		t.Fatalf("watch output:\n%s", s)
	}
	// 700 ms at a 20 ms floor would be 35 polls in a busy-ish loop; with the
	// back-off (20, 40, 80, 160, 320 ms… while nothing arrives) it is far fewer.
	if n := polls.Load(); n > 12 {
		t.Fatalf("%d polls in 700ms", n)
	}
}
