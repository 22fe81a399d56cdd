package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// list is a decoded list and the raw JSON of each element, so -o json/yaml
// print exactly what the broker sent, also after filtering.
type list[T any] struct {
	items []T
	raw   []json.RawMessage
}

func decodeList[T any](resp *http.Response, err error) (list[T], error) {
	var l list[T]
	body, err := api.Read(resp, err)
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(body, &l.raw); err != nil {
		return l, fmt.Errorf("unexpected answer from the broker: %w", err)
	}
	l.items = make([]T, len(l.raw))
	for i, r := range l.raw {
		if err := json.Unmarshal(r, &l.items[i]); err != nil {
			return l, fmt.Errorf("unexpected answer from the broker: %w", err)
		}
	}
	return l, nil
}

func (l list[T]) filter(keep func(T) bool) list[T] {
	var out list[T]
	for i, it := range l.items {
		if keep(it) {
			out.items = append(out.items, it)
			out.raw = append(out.raw, l.raw[i])
		}
	}
	return out
}

func (l list[T]) print(a *App, o outputFlag) error {
	raw := l.raw
	if raw == nil {
		raw = []json.RawMessage{}
	}
	return printValue(a.Out, o, raw)
}

// render prints l as the broker sent it for -o json|yaml, else as a table:
// head (and wide's columns for -o wide) and a row per item; row gets
// whether the wide columns are wanted.
func (l list[T]) render(a *App, o outputFlag, head, wide []string, row func(it T, wide bool) []string) error {
	if o.structured() {
		return l.print(a, o)
	}
	if o == "wide" {
		head = append(head, wide...)
	}
	t := newTable(a.Out, head...)
	for _, it := range l.items {
		t.row(row(it, o == "wide")...)
	}
	return t.flush()
}

type getFlags struct {
	out    outputFlag
	labels []string
	stack  string
	agent  string
	limit  int
}

// getter lists one kind (named as normalizeKind names it) for `get`.
type getter struct {
	kind string
	list func(a *App, ctx context.Context, c *api.Client, f getFlags) error
}

// getters are the kinds `get` lists, in the order its help names them.
var getters = []getter{
	{"agents", (*App).getAgents},
	{"stacks", (*App).getStacks},
	{"deployment-objects", (*App).getObjects},
	{"templates", (*App).getTemplates},
	{"generators", (*App).getGenerators},
	{"work-orders", (*App).getWorkOrders},
	{"webhooks", (*App).getWebhooks},
	{"events", (*App).getEvents},
	{"audit-logs", (*App).getAuditLogs},
}

func (a *App) getCommand() *cobra.Command {
	var f getFlags
	kinds := make([]string, len(getters))
	for i, g := range getters {
		kinds[i] = g.kind
	}
	cmd := &cobra.Command{
		Use:   "get " + strings.Join(kinds, "|"),
		Short: "List things, as a table or as the API's JSON/YAML",
		Long: `get lists one kind of thing. -o table (default) and -o wide show what one scans for;
-o json and -o yaml print the broker's objects unchanged (a JSON array).

  -l k:v      only agents/stacks/templates carrying this label (repeatable: all must match)
  --stack S   deployment-objects of stack S (required there); events on S's objects
  --agent A   stacks associated with agent A; events reported by A`,
		Example: `  brokkr get agents
  brokkr get agents -l env:prod -o wide
  brokkr get stacks --agent prod-agent
  brokkr get deployment-objects --stack payments
  brokkr get events --stack payments -o json
  brokkr get audit-logs --limit 20`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: kinds,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.out.check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			kind := normalizeKind(args[0])
			for _, g := range getters {
				if g.kind == kind {
					return g.list(a, cmd.Context(), c, f)
				}
			}
			return fmt.Errorf("unknown kind %q: use one of %s", args[0], strings.Join(kinds, ", "))
		},
	}
	cmd.Flags().StringVarP((*string)(&f.out), "output", "o", "table", "table, wide, json or yaml")
	cmd.Flags().StringArrayVarP(&f.labels, "selector", "l", nil, "only things with this label (k:v); repeatable")
	cmd.Flags().StringVar(&f.stack, "stack", "", "stack name or id")
	cmd.Flags().StringVar(&f.agent, "agent", "", "agent name, NAME@CLUSTER or id")
	cmd.Flags().IntVar(&f.limit, "limit", 50, "audit-logs: how many entries")
	return cmd
}

// normalizeKind accepts singular forms and short names as kubectl does.
func normalizeKind(k string) string {
	switch strings.ToLower(k) {
	case "agent", "agents":
		return "agents"
	case "stack", "stacks":
		return "stacks"
	case "deployment-object", "deployment-objects", "do", "dos":
		return "deployment-objects"
	case "template", "templates":
		return "templates"
	case "generator", "generators":
		return "generators"
	case "work-order", "work-orders", "wo":
		return "work-orders"
	case "webhook", "webhooks":
		return "webhooks"
	case "event", "events":
		return "events"
	case "audit-log", "audit-logs", "audit":
		return "audit-logs"
	}
	return k
}

func hasAll(have []string, want []string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[h] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// labelNames maps decoded label objects to the labels, in the broker's
// order (passing a decoding error through).
func labelNames[L any](ls []L, err error, label func(L) string) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = label(l)
	}
	return out, nil
}

func agentLabels(ctx context.Context, c *api.Client, id uuid.UUID) ([]string, error) {
	ls, _, err := api.Decode[[]api.AgentLabel](c.ListAgentLabels(ctx, id))
	out, err := labelNames(ls, err, func(l api.AgentLabel) string { return l.Label })
	sort.Strings(out)
	return out, err
}

func stackLabels(ctx context.Context, c *api.Client, id uuid.UUID) ([]string, error) {
	ls, _, err := api.Decode[[]api.StackLabel](c.ListStackLabels(ctx, id))
	out, err := labelNames(ls, err, func(l api.StackLabel) string { return l.Label })
	sort.Strings(out)
	return out, err
}

// withLabels fetches each item's labels when -l filters by them or -o wide
// shows them, and keeps the items that carry every -l label.
func withLabels[T any](l list[T], f getFlags, id func(T) uuid.UUID, fetch func(uuid.UUID) ([]string, error)) (list[T], map[uuid.UUID][]string, error) {
	labels := map[uuid.UUID][]string{}
	if len(f.labels) == 0 && f.out != "wide" {
		return l, labels, nil
	}
	for _, it := range l.items {
		ls, err := fetch(id(it))
		if err != nil {
			return l, nil, err
		}
		labels[id(it)] = ls
	}
	return l.filter(func(it T) bool { return hasAll(labels[id(it)], f.labels) }), labels, nil
}

// agentHealth is the worst health each agent reported for the latest
// deployment object of every stack (failing > degraded > unknown > healthy).
func agentHealth(ctx context.Context, c *api.Client) (map[uuid.UUID]string, error) {
	stacks, _, err := api.Decode[[]api.Stack](c.ListStacks(ctx, nil))
	if err != nil {
		return nil, err
	}
	out := map[uuid.UUID]string{}
	for _, s := range stacks {
		obj, err := latestObject(ctx, c, s.Id)
		if err != nil || obj == nil {
			continue
		}
		h, _, err := api.Decode[api.DeploymentObjectHealth](c.GetDeploymentObjectHealth(ctx, obj.Id))
		if err != nil {
			continue
		}
		for _, r := range h.HealthRecords {
			if healthRank(string(r.Status)) > healthRank(out[r.AgentId]) {
				out[r.AgentId] = string(r.Status)
			}
		}
	}
	return out, nil
}

func healthRank(s string) int {
	switch s {
	case "healthy":
		return 1
	case "unknown":
		return 2
	case "degraded":
		return 3
	case "failing":
		return 4
	}
	return 0
}

func latestEventByAgent(events []api.AgentEvent) map[uuid.UUID]api.AgentEvent {
	out := map[uuid.UUID]api.AgentEvent{}
	for _, e := range events {
		if p, ok := out[e.AgentId]; !ok || e.CreatedAt.After(p.CreatedAt) {
			out[e.AgentId] = e
		}
	}
	return out
}

func (a *App) getAgents(ctx context.Context, c *api.Client, f getFlags) error {
	l, err := decodeList[api.Agent](c.ListAgents(ctx))
	if err != nil {
		return err
	}
	l, labels, err := withLabels(l, f, func(ag api.Agent) uuid.UUID { return ag.Id },
		func(id uuid.UUID) ([]string, error) { return agentLabels(ctx, c, id) })
	if err != nil {
		return err
	}
	if f.out.structured() {
		return l.print(a, f.out)
	}
	events, _, err := api.Decode[[]api.AgentEvent](c.ListAgentEvents(ctx, nil))
	if err != nil {
		return err
	}
	last := latestEventByAgent(events)
	health, err := agentHealth(ctx, c)
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"NAME", "CLUSTER", "STATUS", "HEARTBEAT", "HEALTH", "LAST EVENT", "AGE"}
	return l.render(a, f.out, head, []string{"ID", "LABELS"}, func(ag api.Agent, wide bool) []string {
		ev := "<none>"
		if e, ok := last[ag.Id]; ok {
			ev = fmt.Sprintf("%s %s %s ago", e.EventType, e.Status, age(now, e.CreatedAt))
		}
		h := health[ag.Id]
		if h == "" {
			h = "<none>"
		}
		row := []string{ag.Name, ag.ClusterName, ag.Status, agePtr(now, ag.LastHeartbeat), h, ev, age(now, ag.CreatedAt)}
		if wide {
			row = append(row, ag.Id.String(), joinOrNone(labels[ag.Id]))
		}
		return row
	})
}

func (a *App) getStacks(ctx context.Context, c *api.Client, f getFlags) error {
	var l list[api.Stack]
	var err error
	if f.agent != "" {
		ag, err := mustAgent(ctx, c, f.agent)
		if err != nil {
			return err
		}
		l, err = decodeList[api.Stack](c.ListAgentStacks(ctx, ag.Id))
		if err != nil {
			return err
		}
	} else if l, err = decodeList[api.Stack](c.ListStacks(ctx, nil)); err != nil {
		return err
	}
	l, labels, err := withLabels(l, f, func(s api.Stack) uuid.UUID { return s.Id },
		func(id uuid.UUID) ([]string, error) { return stackLabels(ctx, c, id) })
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"NAME", "LATEST", "HEALTH", "AGE"}
	return l.render(a, f.out, head, []string{"ID", "GENERATOR", "LABELS", "DESCRIPTION"}, func(s api.Stack, wide bool) []string {
		latest := "<none>"
		if obj, err := latestObject(ctx, c, s.Id); err == nil && obj != nil {
			latest = fmt.Sprintf("%d", obj.SequenceId)
			if obj.IsDeletionMarker {
				latest += " (deletion)"
			}
		}
		health := "<none>"
		if h, _, err := api.Decode[api.StackHealth](c.GetStackHealth(ctx, s.Id)); err == nil && h.OverallStatus != "" {
			health = string(h.OverallStatus)
		}
		row := []string{s.Name, latest, health, age(now, s.CreatedAt)}
		if wide {
			gen := "<system>"
			if !isSystemGenerator(s.GeneratorId) {
				gen = s.GeneratorId.String()
			}
			row = append(row, s.Id.String(), gen, joinOrNone(labels[s.Id]), str(s.Description))
		}
		return row
	})
}

func (a *App) getObjects(ctx context.Context, c *api.Client, f getFlags) error {
	if f.stack == "" {
		return fmt.Errorf("get deployment-objects needs --stack")
	}
	st, err := mustStack(ctx, c, f.stack)
	if err != nil {
		return err
	}
	l, err := decodeList[api.DeploymentObject](c.ListStackDeploymentObjects(ctx, st.Id))
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"SEQUENCE", "ID", "CHECKSUM", "DELETION", "AGE"}
	return l.render(a, f.out, head, nil, func(o api.DeploymentObject, _ bool) []string {
		return []string{fmt.Sprint(o.SequenceId), o.Id.String(), o.YamlChecksum[:min(12, len(o.YamlChecksum))], fmt.Sprint(o.IsDeletionMarker), age(now, o.CreatedAt)}
	})
}

func (a *App) getTemplates(ctx context.Context, c *api.Client, f getFlags) error {
	l, err := decodeList[api.StackTemplate](c.ListTemplates(ctx))
	if err != nil {
		return err
	}
	l, labels, err := withLabels(l, f, func(tp api.StackTemplate) uuid.UUID { return tp.Id },
		func(id uuid.UUID) ([]string, error) {
			ls, _, err := api.Decode[[]api.TemplateLabel](c.ListTemplateLabels(ctx, id))
			return labelNames(ls, err, func(l api.TemplateLabel) string { return l.Label })
		})
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"NAME", "VERSION", "OWNER", "AGE"}
	return l.render(a, f.out, head, []string{"ID", "LABELS", "DESCRIPTION"}, func(tp api.StackTemplate, wide bool) []string {
		row := []string{tp.Name, fmt.Sprint(tp.Version), ownerOf(tp.GeneratorId), age(now, tp.CreatedAt)}
		if wide {
			row = append(row, tp.Id.String(), joinOrNone(labels[tp.Id]), str(tp.Description))
		}
		return row
	})
}

// ownerOf names the generator that owns a stack or template.
func ownerOf(generator *uuid.UUID) string {
	if generator == nil {
		return "<system>"
	}
	return generator.String()
}

func (a *App) getGenerators(ctx context.Context, c *api.Client, f getFlags) error {
	l, err := decodeList[api.Generator](c.ListGenerators(ctx))
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"NAME", "ACTIVE", "LAST ACTIVE", "AGE"}
	return l.render(a, f.out, head, []string{"ID", "DESCRIPTION"}, func(g api.Generator, wide bool) []string {
		row := []string{g.Name, fmt.Sprint(g.IsActive), agePtr(now, g.LastActiveAt), age(now, g.CreatedAt)}
		if wide {
			row = append(row, g.Id.String(), str(g.Description))
		}
		return row
	})
}

func (a *App) getWorkOrders(ctx context.Context, c *api.Client, f getFlags) error {
	l, err := decodeList[api.WorkOrder](c.ListWorkOrders(ctx, &api.ListWorkOrdersParams{}))
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"ID", "TYPE", "STATUS", "RETRIES", "CLAIMED BY", "PROGRESS", "AGE"}
	return l.render(a, f.out, head, []string{"LAST ERROR"}, func(w api.WorkOrder, wide bool) []string {
		claimed := "<none>"
		if w.ClaimedBy != nil {
			claimed = w.ClaimedBy.String()
		}
		prog := "<none>"
		if w.Progress != nil && w.Progress.Percent != nil {
			prog = fmt.Sprintf("%d%%", *w.Progress.Percent)
		}
		row := []string{w.Id.String(), w.WorkType, string(w.Status), fmt.Sprintf("%d/%d", w.RetryCount, w.MaxRetries), claimed, prog, age(now, w.CreatedAt)}
		if wide {
			row = append(row, truncate(str(w.LastError), 60))
		}
		return row
	})
}

func (a *App) getWebhooks(ctx context.Context, c *api.Client, f getFlags) error {
	l, err := decodeList[api.WebhookSubscription](c.ListWebhooks(ctx))
	if err != nil {
		return err
	}
	now := a.Now()
	head := []string{"NAME", "ENABLED", "EVENTS", "DELIVERED BY", "AGE"}
	return l.render(a, f.out, head, []string{"ID", "RETRIES", "TIMEOUT"}, func(w api.WebhookSubscription, wide bool) []string {
		by := "broker"
		if w.TargetLabels != nil && len(*w.TargetLabels) > 0 {
			by = "agents " + strings.Join(*w.TargetLabels, ",")
		}
		row := []string{w.Name, fmt.Sprint(w.Enabled), strings.Join(w.EventTypes, ","), by, age(now, w.CreatedAt)}
		if wide {
			row = append(row, w.Id.String(), fmt.Sprint(w.MaxRetries), fmt.Sprintf("%ds", w.TimeoutSeconds))
		}
		return row
	})
}

// eventFilter narrows events to an agent and/or a stack's objects.
func eventFilter(ctx context.Context, c *api.Client, agentRef, stackRef string) (func(api.AgentEvent) bool, map[uuid.UUID]string, error) {
	var agentID *uuid.UUID
	if agentRef != "" {
		ag, err := mustAgent(ctx, c, agentRef)
		if err != nil {
			return nil, nil, err
		}
		agentID = &ag.Id
	}
	var objs map[uuid.UUID]bool
	if stackRef != "" {
		st, err := mustStack(ctx, c, stackRef)
		if err != nil {
			return nil, nil, err
		}
		list, _, err := api.Decode[[]api.DeploymentObject](c.ListStackDeploymentObjects(ctx, st.Id))
		if err != nil {
			return nil, nil, err
		}
		objs = map[uuid.UUID]bool{}
		for _, o := range list {
			objs[o.Id] = true
		}
	}
	names := map[uuid.UUID]string{}
	if agents, _, err := api.Decode[[]api.Agent](c.ListAgents(ctx)); err == nil {
		for _, ag := range agents {
			names[ag.Id] = ag.Name
		}
	}
	return func(e api.AgentEvent) bool {
		if agentID != nil && e.AgentId != *agentID {
			return false
		}
		if objs != nil && !objs[e.DeploymentObjectId] {
			return false
		}
		return true
	}, names, nil
}

func (a *App) getEvents(ctx context.Context, c *api.Client, f getFlags) error {
	keep, names, err := eventFilter(ctx, c, f.agent, f.stack)
	if err != nil {
		return err
	}
	l, err := decodeList[api.AgentEvent](c.ListAgentEvents(ctx, nil))
	if err != nil {
		return err
	}
	head := []string{"TIME", "AGENT", "TYPE", "STATUS", "OBJECT", "MESSAGE"}
	return l.filter(keep).render(a, f.out, head, nil, func(e api.AgentEvent, _ bool) []string { return eventCols(e, names) })
}

func eventCols(e api.AgentEvent, names map[uuid.UUID]string) []string {
	n := names[e.AgentId]
	if n == "" {
		n = e.AgentId.String()
	}
	return []string{e.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), n, e.EventType, e.Status, e.DeploymentObjectId.String()[:8], truncate(str(e.Message), 80)}
}

func (a *App) getAuditLogs(ctx context.Context, c *api.Client, f getFlags) error {
	limit := f.limit
	page, raw, err := api.Decode[api.AuditLogPage](c.ListAuditLogs(ctx, &api.ListAuditLogsParams{Limit: &limit}))
	if err != nil {
		return err
	}
	if f.out.structured() {
		return printRaw(a.Out, f.out, raw)
	}
	t := newTable(a.Out, "TIME", "ACTOR", "ACTION", "RESOURCE", "RESOURCE ID")
	for _, l := range page.Logs {
		actor := l.ActorType
		if l.ActorId != nil {
			actor += "/" + l.ActorId.String()[:8]
		}
		rid := "<none>"
		if l.ResourceId != nil {
			rid = l.ResourceId.String()
		}
		t.row(l.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), actor, l.Action, l.ResourceType, rid)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if page.Total > page.Count {
		fmt.Fprintf(a.Err, "(%d of %d entries; --limit to see more)\n", page.Count, page.Total)
	}
	return nil
}
