package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/brokkr-go/brokkr/services/api/internal/apitest"
)

type fleetFrame struct {
	Type string      `json:"type"`
	Body fleetRecord `json:"body"`
}

func dialFleetLive(t *testing.T, e *apitest.Env, opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+v1+"/fleet/live", opts)
}

// The live push end to end: an admin subscribes (header or browser
// subprotocol), a change made through the API arrives as one fleet_update
// frame with the whole record; other roles are refused before the upgrade.
func TestFleetLivePush(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	a := e.CreateAgent("live-a", "c")
	other := e.CreateAgent("live-other", "c")

	header := http.Header{"Authorization": {"Bearer " + e.AdminPAK}}
	conn, _, err := dialFleetLive(t, e, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	// A browser's way: the PAK as a subprotocol; only brokkr.v1 comes back.
	browser, resp, err := dialFleetLive(t, e, &websocket.DialOptions{Subprotocols: []string{"brokkr.pak." + e.AdminPAK, "brokkr.v1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer browser.CloseNow()
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "brokkr.v1" {
		t.Errorf("echoed subprotocol %q, want brokkr.v1", got)
	}
	var c struct {
		LiveSubscribers int `json:"live_subscribers"`
	}
	e.Must(200, "GET", v1+"/admin/ws/connections", e.AdminPAK, nil).JSON(t, &c)
	if c.LiveSubscribers != 2 {
		t.Errorf("live_subscribers %d, want 2", c.LiveSubscribers)
	}
	// Let the first rebuild set the baseline, then change one agent.
	time.Sleep(500 * time.Millisecond)
	st := e.CreateStack(e.AdminPAK, unique("live"))
	e.Deploy(e.AdminPAK, st, cmYAML(unique("live")))
	e.Must(201, "POST", v1+"/agents/"+a.ID+"/targets", e.AdminPAK, map[string]string{"stack_id": st})

	for _, cn := range []*websocket.Conn{conn, browser} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var f fleetFrame
		for f.Body.PendingObjectCount == 0 {
			if err := wsjson.Read(ctx, cn, &f); err != nil {
				cancel()
				t.Fatalf("no frame: %v", err)
			}
			if f.Type != "fleet_update" || f.Body.AgentID == other.ID {
				cancel()
				t.Fatalf("unexpected frame %+v", f)
			}
		}
		cancel()
		if f.Body.AgentID != a.ID || f.Body.Name != "live-a" || f.Body.PendingObjectCount != 1 {
			t.Errorf("frame %+v", f)
		}
	}
	// The stream ignores what the client sends and stays open.
	_ = conn.Write(context.Background(), websocket.MessageText, []byte("hello"))

	for _, pak := range []string{a.PAK, e.CreateGenerator(unique("live-g")).PAK} {
		_, resp, err := dialFleetLive(t, e, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + pak}}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("non-admin upgrade: %v %v", resp, err)
		}
	}
	if _, resp, err := dialFleetLive(t, e, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("no PAK: %v %v", resp, err)
	}
	wantCode(t, e.Do("GET", v1+"/fleet/live", e.AdminPAK, nil), 426, "upgrade_required")
}
