package console

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
	"github.com/brokkr-go/brokkr/pkg/app/overview"
	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
	"github.com/brokkr-go/brokkr/pkg/app/workorders"
	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/domain/audit"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/identity"
	"github.com/brokkr-go/brokkr/pkg/domain/labels"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	"github.com/brokkr-go/brokkr/pkg/domain/webhook"
	"github.com/brokkr-go/brokkr/pkg/domain/workorder"
	"github.com/brokkr-go/brokkr/pkg/platform/secret"
)

// pager is the state of a paginated table.
type pager struct {
	Limit, Offset, Total, Shown int
}

func (p pager) From() int     { return min(p.Offset+1, p.Total) }
func (p pager) To() int       { return p.Offset + p.Shown }
func (p pager) HasPrev() bool { return p.Offset > 0 }
func (p pager) HasNext() bool { return p.Offset+p.Shown < p.Total }
func (p pager) Prev() int     { return max(p.Offset-p.Limit, 0) }
func (p pager) Next() int     { return p.Offset + p.Limit }

// pageParams reads limit/offset; bad values are a 400 page.
func pageParams(g *gin.Context, def int) (int, int, error) {
	limit, offset := def, 0
	if s := g.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, domain.Invalid("limit must be a positive number")
		}
		limit = min(n, overview.MaxLimit)
	}
	if s := g.Query("offset"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return 0, 0, domain.Invalid("offset must be a number ≥ 0")
		}
		offset = n
	}
	return limit, offset, nil
}

func pathUUID(g *gin.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(g.Param(name))
	if err != nil {
		return uuid.Nil, domain.Invalid("invalid id in the path")
	}
	return id, nil
}

// slicePage cuts one page out of an in-memory list.
func slicePage[T any](all []T, limit, offset int) ([]T, pager) {
	p := pager{Limit: limit, Offset: offset, Total: len(all)}
	if offset >= len(all) {
		return nil, p
	}
	out := all[offset:min(offset+limit, len(all))]
	p.Shown = len(out)
	return out, p
}

// namedListData is the data of a list page of named items: the page's rows
// and its pager.
type namedListData[T any] struct {
	Rows  []T
	Pager pager
}

// namedList is the handler of a list page of named items (stacks,
// templates): it loads the whole list, keeps (when search) the items whose
// name contains the "q" query, sorts them by name, cuts the requested page
// out of them and renders page (also its nav entry) under title.
func namedList[T any](c *Console, page, title string, list func(context.Context, identity.Principal) ([]T, error),
	name func(T) string, search bool) gin.HandlerFunc {
	return func(g *gin.Context) {
		var limit, offset int
		var all []T
		if !c.steps(g, paging(g, &limit, &offset),
			func() (err error) { all, err = list(g.Request.Context(), principal(g)); return }) {
			return
		}
		if text := strings.ToLower(strings.TrimSpace(g.Query("q"))); search && text != "" {
			kept := all[:0]
			for _, v := range all {
				if strings.Contains(strings.ToLower(name(v)), text) {
					kept = append(kept, v)
				}
			}
			all = kept
		}
		sort.Slice(all, func(i, j int) bool { return name(all[i]) < name(all[j]) })
		rows, pg := slicePage(all, limit, offset)
		c.showLive(g, page, title, page, namedListData[T]{Rows: rows, Pager: pg})
	}
}

// steps runs the loading steps of a page in order; at the first error it
// answers the error page and reports false.
func (c *Console) steps(g *gin.Context, steps ...func() error) bool {
	for _, step := range steps {
		if err := step(); err != nil {
			c.fail(g, err)
			return false
		}
	}
	return true
}

// pathID is a step that reads the path parameter name into id.
func pathID(g *gin.Context, name string, id *uuid.UUID) func() error {
	return func() (err error) { *id, err = pathUUID(g, name); return }
}

// paging is a step that reads limit/offset (default overview.DefaultLimit).
func paging(g *gin.Context, limit, offset *int) func() error {
	return func() (err error) { *limit, *offset, err = pageParams(g, overview.DefaultLimit); return }
}

// showLive renders a page with a live region.
func (c *Console) showLive(g *gin.Context, page, title, nav string, data any) {
	v := c.newView(g, title, nav, data)
	v.Live = true
	c.render(g, http.StatusOK, page, v)
}

// ---- fleet -----------------------------------------------------------------

type fleetData struct {
	Page       overview.FleetPage
	Pager      pager
	StaleAfter time.Duration
	Rows       []fleetRow
}

type fleetRow struct {
	overview.AgentRow
	State string
	Stale bool
}

func (c *Console) fleet(g *gin.Context) {
	p := principal(g)
	if p.Role == identity.RoleGenerator {
		g.Redirect(http.StatusSeeOther, Prefix+"/stacks")
		return
	}
	limit, offset, err := pageParams(g, overview.DefaultLimit)
	if err != nil {
		c.fail(g, err)
		return
	}
	q := overview.FleetQuery{Text: g.Query("q"), Label: g.Query("label"), State: g.Query("state"),
		Sort: g.Query("sort"), Desc: g.Query("order") == "desc", Limit: limit, Offset: offset, StaleAfter: c.d.StaleAfter}
	page, err := c.d.Overview.Fleet(g.Request.Context(), p, q)
	if err != nil {
		c.fail(g, err)
		return
	}
	now := time.Now()
	d := fleetData{Page: page, StaleAfter: c.d.StaleAfter,
		Pager: pager{Limit: page.Query.Limit, Offset: page.Query.Offset, Total: page.Matched, Shown: len(page.Rows)}}
	for _, r := range page.Rows {
		d.Rows = append(d.Rows, fleetRow{AgentRow: r, State: r.State(now, c.d.StaleAfter),
			Stale: r.LastHeartbeat != nil && now.Sub(*r.LastHeartbeat) > c.d.StaleAfter})
	}
	c.showLive(g, "fleet", "Fleet", "fleet", d)
}

// ---- agent -----------------------------------------------------------------

type agentData struct {
	Agent       agent.Agent
	Labels      []labels.Label
	Annotations []labels.Annotation
	Stacks      []overview.AgentStack
	Events      []agent.Event
	EventsTotal int
	Pending     []workorder.WorkOrder
	Diagnostics []diagnostic.Request
	// Recent are the newest diagnostics requests of any status with their
	// results; Objects the latest objects one can be requested for.
	Recent  []diagView
	Objects []overview.AgentStack
	Stale   bool
	NewPAK  string
}

// recentDiagnostics is how many diagnostics requests the agent page shows.
const recentDiagnostics = 10

// diagView is a diagnostics request and its result, with the result's JSON
// documents indented for reading and their entries counted.
type diagView struct {
	diagnostics.View
	Pods, Events     int // -1: not a JSON array
	PodsJSON, EvJSON string
	LogsJSON         string
}

func newDiagView(v diagnostics.View) diagView {
	d := diagView{View: v, Pods: -1, Events: -1}
	if r := v.Result; r != nil {
		d.PodsJSON, d.Pods = indentJSON(r.PodStatuses)
		d.EvJSON, d.Events = indentJSON(r.Events)
		if r.LogTails != nil {
			d.LogsJSON, _ = indentJSON(*r.LogTails)
		}
	}
	return d
}

// indentJSON indents a JSON document for reading (returned as is when it is
// not one; "<" and "&" stay readable, the template escapes them) and counts
// its entries when it is an array (else -1).
func indentJSON(doc string) (string, int) {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		return doc, -1
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return doc, -1
	}
	n := -1
	if arr, ok := v.([]any); ok {
		n = len(arr)
	}
	return strings.TrimSuffix(buf.String(), "\n"), n
}

func (c *Console) loadAgent(g *gin.Context) (agentData, bool) {
	p, ctx := principal(g), g.Request.Context()
	var id uuid.UUID
	var d agentData
	if !c.steps(g,
		pathID(g, "id", &id),
		func() (err error) { d.Agent, err = c.d.Agents.Get(ctx, p, id); return },
		func() (err error) { d.Labels, err = c.d.AgentLabels.Labels(ctx, p, id); return },
		func() (err error) { d.Annotations, err = c.d.AgentLabels.Annotations(ctx, p, id); return },
		func() (err error) { d.Stacks, err = c.d.Overview.AgentStacks(ctx, p, id); return },
		func() (err error) { d.Events, err = c.d.Agents.Events(ctx, p, id); return },
		func() (err error) { d.Pending, err = c.d.WorkOrders.Pending(ctx, p, id, ""); return },
		func() (err error) { d.Diagnostics, err = c.d.Diagnostics.Pending(ctx, p, id); return },
		func() error {
			recent, err := c.d.Diagnostics.Recent(ctx, p, id, recentDiagnostics)
			for _, v := range recent {
				d.Recent = append(d.Recent, newDiagView(v))
			}
			return err
		},
	) {
		return agentData{}, false
	}
	for _, st := range d.Stacks {
		if st.ObjectID != nil && !st.Marker {
			d.Objects = append(d.Objects, st)
		}
	}
	d.EventsTotal = len(d.Events)
	d.Events = d.Events[:min(len(d.Events), 25)]
	d.Stale = d.Agent.LastHeartbeat != nil && time.Since(*d.Agent.LastHeartbeat) > c.d.StaleAfter
	return d, true
}

func (c *Console) agent(g *gin.Context) {
	d, ok := c.loadAgent(g)
	if !ok {
		return
	}
	c.showLive(g, "agent", "Agent "+d.Agent.Name, "fleet", d)
}

// rotateAgentPAK issues a new PAK and shows it once, in this response only
// (no-store; never in a URL or a log line).
func (c *Console) rotateAgentPAK(g *gin.Context) {
	var id uuid.UUID
	var pak secret.String
	if !c.steps(g, pathID(g, "id", &id),
		func() (err error) { _, pak, err = c.d.Agents.RotatePAK(g.Request.Context(), principal(g), id); return }) {
		return
	}
	d, ok := c.loadAgent(g)
	if !ok {
		return
	}
	d.NewPAK = pak.Reveal()
	v := c.newView(g, "Agent "+d.Agent.Name, "fleet", d)
	v.Flash = "A new PAK was issued; the old one no longer works."
	c.render(g, http.StatusOK, "agent", v)
}

// requestDiagnostics asks the agent for diagnostics of one of its latest
// objects (admin only, as POST /deployment-objects/{id}/diagnostics).
func (c *Console) requestDiagnostics(g *gin.Context) {
	id, err := pathUUID(g, "id")
	if err != nil {
		c.fail(g, err)
		return
	}
	objectID, err := uuid.Parse(g.PostForm("object_id"))
	if err != nil {
		c.fail(g, domain.Invalid("Choose a deployment object"))
		return
	}
	in := diagnostics.CreateInput{AgentID: id}
	if v := strings.TrimSpace(g.PostForm("retention_minutes")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.fail(g, domain.Invalid("Retention must be a whole number of minutes"))
			return
		}
		in.RetentionMinutes = &n
	}
	by := "console"
	in.RequestedBy = &by
	if _, err := c.d.Diagnostics.Create(g.Request.Context(), principal(g), objectID, in); err != nil {
		c.fail(g, err)
		return
	}
	g.Redirect(http.StatusSeeOther, Prefix+"/agents/"+id.String()+"#diagnostics")
}

// ---- stacks ----------------------------------------------------------------

// stacks is the stack list, searchable by name.
func (c *Console) stacks() gin.HandlerFunc {
	return namedList(c, "stacks", "Stacks", c.d.Stacks.List, func(s stack.Stack) string { return s.Name }, true)
}

type stackData struct {
	Stack       stack.Stack
	Labels      []labels.Label
	Annotations []labels.Annotation
	Objects     []overview.ObjectRow
	Pager       pager
}

func (c *Console) stack(g *gin.Context) {
	p, ctx := principal(g), g.Request.Context()
	var id uuid.UUID
	var limit, offset, total int
	var d stackData
	if !c.steps(g, pathID(g, "id", &id), paging(g, &limit, &offset),
		func() (err error) { d.Stack, err = c.d.Stacks.Get(ctx, p, id); return },
		func() (err error) { d.Labels, err = c.d.StackLabels.Labels(ctx, p, id); return },
		func() (err error) { d.Annotations, err = c.d.StackLabels.Annotations(ctx, p, id); return },
		func() (err error) {
			d.Objects, total, err = c.d.Overview.StackObjects(ctx, p, id, limit, offset)
			return
		},
	) {
		return
	}
	d.Pager = pager{Limit: limit, Offset: offset, Total: total, Shown: len(d.Objects)}
	c.showLive(g, "stack", "Stack "+d.Stack.Name, "stacks", d)
}

type objectData struct {
	Object stack.DeploymentObject
	Stack  stack.Stack
	Agents []overview.ObjectAgent
}

func (c *Console) object(g *gin.Context) {
	p, ctx := principal(g), g.Request.Context()
	var id uuid.UUID
	var d objectData
	if !c.steps(g, pathID(g, "id", &id),
		func() (err error) { d.Object, err = c.d.Stacks.GetDeploymentObject(ctx, p, id); return },
		func() (err error) { d.Stack, err = c.d.Stacks.Get(ctx, p, d.Object.StackID); return },
		func() (err error) {
			if p.IsAdmin() {
				d.Agents, err = c.d.Overview.ObjectAgents(ctx, p, id)
			}
			return
		},
	) {
		return
	}
	c.showLive(g, "object", "Deployment object #"+strconv.FormatInt(d.Object.SequenceID, 10), "stacks", d)
}

type diffData struct {
	Stack    stack.Stack
	From, To stack.DeploymentObject
	Lines    []diffLine
	Added    int
	Removed  int
}

// diff compares two objects of one stack line by line.
func (c *Console) diff(g *gin.Context) {
	p, ctx := principal(g), g.Request.Context()
	var id, fromID, toID uuid.UUID
	var d diffData
	if !c.steps(g, pathID(g, "id", &id),
		func() error {
			var err1, err2 error
			fromID, err1 = uuid.Parse(g.Query("from"))
			toID, err2 = uuid.Parse(g.Query("to"))
			if err1 != nil || err2 != nil {
				return domain.Invalid("choose two deployment objects to compare (from and to)")
			}
			return nil
		},
		func() (err error) { d.Stack, err = c.d.Stacks.Get(ctx, p, id); return },
		func() (err error) { d.From, err = c.d.Stacks.GetDeploymentObject(ctx, p, fromID); return },
		func() (err error) { d.To, err = c.d.Stacks.GetDeploymentObject(ctx, p, toID); return },
		func() error {
			if d.From.StackID != id || d.To.StackID != id {
				return domain.Invalid("both deployment objects must belong to this stack")
			}
			return nil
		},
	) {
		return
	}
	if d.From.SequenceID > d.To.SequenceID {
		d.From, d.To = d.To, d.From
	}
	d.Lines, d.Added, d.Removed = lineDiff(d.From.YAMLContent, d.To.YAMLContent)
	c.render(g, http.StatusOK, "diff", c.newView(g, "Diff #"+strconv.FormatInt(d.From.SequenceID, 10)+
		" → #"+strconv.FormatInt(d.To.SequenceID, 10), "stacks", d))
}

// ---- templates -------------------------------------------------------------

// templates is the template list.
func (c *Console) templates() gin.HandlerFunc {
	return namedList(c, "templates", "Templates", c.d.Templates.List, func(t template.Template) string { return t.Name }, false)
}

// ---- work orders -------------------------------------------------------------

type workOrdersData struct {
	Orders []workorder.WorkOrder
	Pager  pager
	Log    []workorder.LogEntry
}

func (c *Console) workOrders(g *gin.Context) {
	c.showWorkOrders(g, "")
}

func (c *Console) showWorkOrders(g *gin.Context, flash string) {
	p, ctx := principal(g), g.Request.Context()
	var limit, offset int
	var all []workorder.WorkOrder
	var log []workorder.LogEntry
	n := 20
	if !c.steps(g, paging(g, &limit, &offset),
		func() (err error) {
			all, err = c.d.WorkOrders.List(ctx, p, workorders.ListFilter{Status: g.Query("status"), WorkType: g.Query("type")})
			return
		},
		func() (err error) {
			log, err = c.d.WorkOrders.Log(ctx, p, workorders.LogFilter{WorkType: g.Query("type"), Limit: &n})
			return
		},
	) {
		return
	}
	rows, pg := slicePage(all, limit, offset)
	v := c.newView(g, "Work orders", "work-orders", workOrdersData{Orders: rows, Pager: pg, Log: log})
	v.Live, v.Flash = true, flash
	c.render(g, http.StatusOK, "workorders", v)
}

func (c *Console) cancelWorkOrder(g *gin.Context) {
	var id uuid.UUID
	if !c.steps(g, pathID(g, "id", &id),
		func() error { return c.d.WorkOrders.Cancel(g.Request.Context(), principal(g), id) }) {
		return
	}
	// Post/redirect/get, so a reload does not repeat the action.
	g.Redirect(http.StatusSeeOther, Prefix+"/work-orders?"+url.Values{"cancelled": {id.String()}}.Encode())
}

// ---- webhooks ----------------------------------------------------------------

type webhooksData struct {
	Subscriptions []webhook.Subscription
}

func (c *Console) webhooks(g *gin.Context) {
	subs, err := c.d.Webhooks.List(g.Request.Context(), principal(g))
	if err != nil {
		c.fail(g, err)
		return
	}
	c.showLive(g, "webhooks", "Webhooks", "webhooks", webhooksData{Subscriptions: subs})
}

type webhookData struct {
	Subscription webhook.Subscription
	Deliveries   []webhook.Delivery
	Pager        pager
	Status       string
}

func (c *Console) webhook(g *gin.Context) {
	p, ctx := principal(g), g.Request.Context()
	var id uuid.UUID
	var limit, offset int
	d := webhookData{Status: g.Query("status")}
	if !c.steps(g, pathID(g, "id", &id), paging(g, &limit, &offset),
		func() (err error) { d.Subscription, err = c.d.Webhooks.Get(ctx, p, id); return },
		// One row more than the page tells whether a next page exists
		// without counting every delivery.
		func() (err error) {
			d.Deliveries, err = c.d.Webhooks.Deliveries(ctx, p, webhooks.DeliveryQuery{SubscriptionID: id,
				Status: d.Status, Limit: limit + 1, Offset: offset})
			return
		},
	) {
		return
	}
	d.Pager = pager{Limit: limit, Offset: offset, Total: offset + len(d.Deliveries)}
	d.Deliveries = d.Deliveries[:min(len(d.Deliveries), limit)]
	d.Pager.Shown = len(d.Deliveries)
	v := c.newView(g, "Webhook "+d.Subscription.Name, "webhooks", d)
	v.Live = true
	if g.Query("retried") != "" {
		v.Flash = "The delivery is pending again and will be sent shortly."
	}
	c.render(g, http.StatusOK, "webhook", v)
}

func (c *Console) retryDelivery(g *gin.Context) {
	var id, did uuid.UUID
	if !c.steps(g, pathID(g, "id", &id), pathID(g, "delivery_id", &did),
		func() (err error) {
			_, err = c.d.Webhooks.RetryDelivery(g.Request.Context(), principal(g), id, did)
			return
		}) {
		return
	}
	g.Redirect(http.StatusSeeOther, Prefix+"/webhooks/"+id.String()+"?retried="+did.String())
}

// ---- audit -------------------------------------------------------------------

type auditData struct {
	Entries []audit.Entry
	Pager   pager
}

func (c *Console) audit(g *gin.Context) {
	limit, offset, err := pageParams(g, overview.DefaultLimit)
	if err != nil {
		c.fail(g, err)
		return
	}
	f := audit.Filter{ActorType: g.Query("actor_type"), Action: strings.TrimSpace(g.Query("action")),
		ResourceType: strings.TrimSpace(g.Query("resource_type")), Limit: limit, Offset: offset}
	for name, dst := range map[string]**uuid.UUID{"actor_id": &f.ActorID, "resource_id": &f.ResourceID} {
		if s := strings.TrimSpace(g.Query(name)); s != "" {
			id, err := uuid.Parse(s)
			if err != nil {
				c.fail(g, domain.Invalid(name+" must be a UUID"))
				return
			}
			*dst = &id
		}
	}
	for name, dst := range map[string]**time.Time{"from": &f.From, "to": &f.To} {
		if s := strings.TrimSpace(g.Query(name)); s != "" {
			t, err := parseTime(s)
			if err != nil {
				c.fail(g, domain.Invalid(name+" must be a date and time (2006-01-02T15:04)"))
				return
			}
			*dst = &t
		}
	}
	page, err := c.d.AuditLog.Query(g.Request.Context(), principal(g), f)
	if err != nil {
		c.fail(g, err)
		return
	}
	c.showLive(g, "audit", "Audit log", "audit", auditData{Entries: page.Logs,
		Pager: pager{Limit: page.Limit, Offset: page.Offset, Total: page.Total, Shown: page.Count}})
}

// parseTime accepts RFC 3339 and the browser's datetime-local value (UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, domain.Invalid("bad time")
}
