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
	if !wantsUpgrade(c, "GET /fleet/live") {
		return
	}
	updates, cancel, err := h.live.Subscribe(principal(c))
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	defer cancel()
	serveWebSocket(c, func(ctx context.Context) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-updates:
			return gin.H{"type": "fleet_update", "body": fleetRecord(r)}, nil
		}
	})
}

// wantsUpgrade answers 426 to a plain GET of a WebSocket route.
func wantsUpgrade(c *gin.Context, route string) bool {
	if strings.EqualFold(c.GetHeader("Upgrade"), "websocket") {
		return true
	}
	c.Header("Upgrade", "websocket")
	httpserver.AbortError(c, http.StatusUpgradeRequired, route+" is a WebSocket: send Upgrade: websocket")
	return false
}

// wsWriteTimeout ends a socket whose client has not taken a frame for that
// long; until then a lagging subscriber only loses frames (its queue is
// bounded), never slowing anyone else.
const wsWriteTimeout = time.Minute

// serveWebSocket upgrades the request (echoing only the brokkr.v1
// subprotocol) and writes what next returns as JSON text frames until the
// client leaves, a write or a keep-alive ping fails, or next fails.
// Anything the client sends is ignored.
func serveWebSocket(c *gin.Context, next func(ctx context.Context) (any, error)) {
	// The server's read deadline for request bodies would cut the socket
	// after a minute; the socket has its own keep-alive below.
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Time{})
	conn, err := websocket.Accept(c.Writer, c.Request, &websocket.AcceptOptions{Subprotocols: []string{wsMarker}})
	if err != nil {
		return // Accept answered the client (426 or 400)
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(conn.CloseRead(c.Request.Context()))
	defer cancel()
	go func() {
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
					cancel()
					return
				}
			}
		}
	}()
	for {
		v, err := next(ctx)
		if err != nil {
			return
		}
		wctx, wcancel := context.WithTimeout(ctx, wsWriteTimeout)
		err = wsjson.Write(wctx, conn, v)
		wcancel()
		if err != nil {
			return
		}
	}
}
