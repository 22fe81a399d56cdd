package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/fleet"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/httpserver"
)

// The fleet record's wire shapes are 0.9.1's FleetAgentRecord,
// AgentFleetStatusResponse and WsConnectionsResponse
// (docs/compatibility.md#fleet-record): the nullable fields are always
// present, as null.

type fleetRecordView struct {
	AgentID               uuid.UUID  `json:"agent_id"`
	Name                  string     `json:"name"`
	ClusterName           string     `json:"cluster_name"`
	Status                string     `json:"status"`
	WSConnected           bool       `json:"ws_connected"`
	ConnectedSince        *time.Time `json:"connected_since"`
	LastHeartbeat         *time.Time `json:"last_heartbeat"`
	HeartbeatAgeSeconds   *int64     `json:"heartbeat_age_seconds"`
	PendingObjectCount    int64      `json:"pending_object_count"`
	PendingWorkOrders     int64      `json:"pending_work_orders"`
	ClaimedWorkOrders     int64      `json:"claimed_work_orders"`
	LastEventAt           *time.Time `json:"last_event_at"`
	SecondsSinceLastEvent *int64     `json:"seconds_since_last_event"`
	HealthFailing         int64      `json:"health_failing"`
	HealthDegraded        int64      `json:"health_degraded"`
	K8sReachable          *bool      `json:"k8s_reachable"`
	K8sAPILatencyMS       *int64     `json:"k8s_api_latency_ms"`
}

func fleetRecord(r fleet.Record) fleetRecordView {
	return fleetRecordView{AgentID: r.AgentID, Name: r.Name, ClusterName: r.ClusterName, Status: r.Status,
		WSConnected: r.Connected, ConnectedSince: r.ConnectedSince, LastHeartbeat: r.LastHeartbeat,
		HeartbeatAgeSeconds: r.HeartbeatAgeSeconds, PendingObjectCount: r.PendingObjects,
		PendingWorkOrders: r.PendingWorkOrders, ClaimedWorkOrders: r.ClaimedWorkOrders, LastEventAt: r.LastEventAt,
		SecondsSinceLastEvent: r.SecondsSinceLastEvent, HealthFailing: r.HealthFailing, HealthDegraded: r.HealthDegraded,
		K8sReachable: r.K8sReachable, K8sAPILatencyMS: r.K8sAPILatencyMS}
}

type fleetStatusView struct {
	Record       fleetRecordView `json:"record"`
	RecentEvents []agent.Event   `json:"recent_events"`
}

type wsConnectionView struct {
	AgentID        uuid.UUID `json:"agent_id"`
	ConnectedSince time.Time `json:"connected_since"`
	MessagesIn     int64     `json:"messages_in"`
	MessagesOut    int64     `json:"messages_out"`
}

type wsConnectionsView struct {
	ConnectedAgents int                `json:"connected_agents"`
	Connections     []wsConnectionView `json:"connections"`
	LiveSubscribers int                `json:"live_subscribers"`
}

type fleetHandlers struct {
	svc  *fleet.Service
	live *fleet.Live
}

// list answers GET /fleet[?pak_id=<generator id>].
func (h fleetHandlers) list(c *gin.Context) {
	gen, ok := pakIDQuery(c)
	if !ok {
		return
	}
	recs, err := h.svc.List(c.Request.Context(), principal(c), gen)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	out := make([]fleetRecordView, len(recs))
	for i, r := range recs {
		out[i] = fleetRecord(r)
	}
	c.JSON(http.StatusOK, out)
}

// status answers GET /agents/{id}/fleet-status.
func (h fleetHandlers) status(c *gin.Context) {
	id, ok := pathID(c, "id")
	if !ok {
		return
	}
	st, err := h.svc.Get(c.Request.Context(), principal(c), id)
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, fleetStatusView{Record: fleetRecord(st.Record), RecentEvents: st.RecentEvents})
}

// connections answers GET /admin/ws/connections: the agents holding a
// target-state long-poll now. Long-poll carries no messages, so those
// counts are 0; live_subscribers counts this replica's /fleet/live
// subscribers (docs/compatibility.md#fleet-connected).
func (h fleetHandlers) connections(c *gin.Context) {
	conns, err := h.svc.Connections(c.Request.Context(), principal(c))
	if err != nil {
		httpserver.Fail(c, err)
		return
	}
	out := wsConnectionsView{ConnectedAgents: len(conns), Connections: make([]wsConnectionView, len(conns))}
	if h.live != nil {
		out.LiveSubscribers = h.live.Subscribers()
	}
	for i, cn := range conns {
		out.Connections[i] = wsConnectionView{AgentID: cn.AgentID, ConnectedSince: cn.ConnectedSince}
	}
	c.JSON(http.StatusOK, out)
}
