package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/gin-gonic/gin"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// wsMarker is the only subprotocol the broker echoes; the PAK-bearing one
// is never echoed (0.9.1's ws-protocol).
const wsMarker = "brokkr.v1"

const wsPAKPrefix = "brokkr.pak."

// liftWSPAK lets a browser, which cannot set headers on new WebSocket(),
// authenticate a WebSocket upgrade by offering "brokkr.pak.<PAK>" as a
// subprotocol: without an Authorization header, that PAK becomes one.
func liftWSPAK(c *gin.Context) {
	if c.GetHeader("Authorization") != "" || !strings.EqualFold(c.GetHeader("Upgrade"), "websocket") {
		return
	}
	for _, v := range c.Request.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if pak, ok := strings.CutPrefix(strings.TrimSpace(p), wsPAKPrefix); ok && pak != "" {
				c.Request.Header.Set("Authorization", "Bearer "+pak)
				return
			}
		}
	}
}

type fleetLiveHandlers struct{ live *fleet.Live }

// live answers GET /fleet/live: a read-only WebSocket of
// {"type": "fleet_update", "body": FleetAgentRecord} frames
// (docs/compatibility.md#fleet-live). Anything the client sends is ignored.
func (h fleetLiveHandlers) stream(c *gin.Context) {
	if h.live == nil {
		httpserver.Fail(c, domain.Unavailable("live push is not configured", nil))
		return
	}
	if !strings.EqualFold(c.GetHeader("Upgrade"), "websocket") {
		c.Header("Upgrade", "websocket")
		httpserver.AbortError(c, http.StatusUpgradeRequired, "GET /fleet/live is a WebSocket: send Upgrade: websocket")
		return
	}
	updates, cancel, err := h.live.Subscribe(principal(c))
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	defer cancel()
	// The server's read deadline for request bodies would cut the socket
	// after a minute; the socket has its own keep-alive below.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{Subprotocols: []string{wsMarker}})
	if err != nil {
		return // Accept answered the client (426 or 400)
	}
	defer conn.CloseNow()
	ctx := conn.CloseRead(c.Request.Context())
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return
			}
		case r := <-updates:
			wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
			err := wsjson.Write(wctx, conn, gin.H{"type": "fleet_update", "body": fleetRecord(r)})
			wcancel()
			if err != nil {
				return
			}
		}
	}
}
