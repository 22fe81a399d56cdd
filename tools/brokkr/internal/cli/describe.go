package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) describeCommand() *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "describe agent|stack|work-order NAME_OR_ID",
		Short: "Show one thing in full: targets, per-agent state, health, recent events",
		Example: `  brokkr describe agent local-agent
  brokkr describe stack payments
  brokkr describe work-order 0b9e…`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			switch normalizeKind(args[0]) {
			case "agents":
				return a.describeAgent(ctx, args[1], out)
			case "stacks":
				return a.describeStack(ctx, args[1], out)
			case "work-orders":
				return a.describeWorkOrder(ctx, args[1], out)
			}
			return fmt.Errorf("cannot describe %q: use agent, stack or work-order", args[0])
		},
	}
	cmd.Flags().StringVarP((*string)(&out), "output", "o", "table", "table (text), json or yaml")
	return cmd
}

// fields prints "Key:  value" lines, aligned.
func (a *App) fields(pairs ...string) error {
	t := &table{tw: tabwriter.NewWriter(a.Out, 0, 0, 2, ' ', 0)}
	for i := 0; i+1 < len(pairs); i += 2 {
		t.row(pairs[i]+":", pairs[i+1])
	}
	return t.flush()
}

func (a *App) describeAgent(ctx context.Context, ref string, out outputFlag) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	ag, err := mustAgent(ctx, c, ref)
	if err != nil {
		return err
	}
	labels, err := agentLabels(ctx, c, ag.Id)
	if err != nil {
		return err
	}
	anns, _, err := api.Decode[[]api.AgentAnnotation](c.ListAgentAnnotations(ctx, ag.Id))
	if err != nil {
		return err
	}
	targets, _, err := api.Decode[[]api.AgentTarget](c.ListAgentTargets(ctx, ag.Id))
	if err != nil {
		return err
	}
	stacks, _, err := api.Decode[[]api.Stack](c.ListAgentStacks(ctx, ag.Id))
	if err != nil {
		return err
	}
	events, _, err := api.Decode[[]api.AgentEvent](c.ListEventsForAgent(ctx, ag.Id))
	if err != nil {
		return err
	}
	type stackState struct {
		Stack  api.Stack             `json:"stack"`
		Latest *api.DeploymentObject `json:"latest_deployment_object"`
		Event  *api.AgentEvent       `json:"last_event"`
		Health *api.HealthRecord     `json:"health"`
		Via    string                `json:"associated_by"`
	}
	explicit := map[uuid.UUID]bool{}
	for _, t := range targets {
		explicit[t.StackId] = true
	}
	var states []stackState
	for _, s := range stacks {
		st := stackState{Stack: s, Via: "label/annotation"}
		if explicit[s.Id] {
			st.Via = "target"
		}
		if obj, err := latestObject(ctx, c, s.Id); err == nil && obj != nil {
			o := *obj
			o.YamlContent = ""
			st.Latest = &o
			for i := range events {
				if events[i].DeploymentObjectId == obj.Id && (st.Event == nil || events[i].CreatedAt.After(st.Event.CreatedAt)) {
					st.Event = &events[i]
				}
			}
			if h, _, err := api.Decode[api.DeploymentObjectHealth](c.GetDeploymentObjectHealth(ctx, obj.Id)); err == nil {
				for i := range h.HealthRecords {
					if h.HealthRecords[i].AgentId == ag.Id {
						st.Health = &h.HealthRecords[i]
					}
				}
			}
		}
		states = append(states, st)
	}
	sort.Slice(events, func(i, j int) bool { return events[i].CreatedAt.After(events[j].CreatedAt) })
	if len(events) > 10 {
		events = events[:10]
	}
	if out.structured() {
		return printValue(a.Out, out, map[string]any{
			"agent": ag, "labels": labels, "annotations": anns, "stacks": states, "recent_events": events,
		})
	}
	now := a.Now()
	var annStr []string
	for _, an := range anns {
		annStr = append(annStr, an.Key+"="+an.Value)
	}
	if err := a.fields("Name", ag.Name, "ID", ag.Id.String(), "Cluster", ag.ClusterName, "Status", ag.Status,
		"Heartbeat", ago(now, ag.LastHeartbeat), "Labels", joinOrNone(labels), "Annotations", joinOrNone(annStr),
		"Created", ag.CreatedAt.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	fmt.Fprintln(a.Out, "\nStacks:")
	t := newTable(a.Out, "  STACK", "VIA", "LATEST", "STATE", "HEALTH", "MESSAGE")
	for _, s := range states {
		latest, state, health, msg := "<none>", "pending", "<none>", ""
		if s.Latest != nil {
			latest = fmt.Sprint(s.Latest.SequenceId)
		}
		if s.Event != nil {
			state, msg = s.Event.Status, truncate(str(s.Event.Message), 60)
		}
		if s.Health != nil {
			health = string(s.Health.Status)
		}
		t.row("  "+s.Stack.Name, s.Via, latest, state, health, msg)
	}
	if err := t.flush(); err != nil {
		return err
	}
	return a.printRecentEvents(events, map[uuid.UUID]string{ag.Id: ag.Name})
}

func (a *App) printRecentEvents(events []api.AgentEvent, names map[uuid.UUID]string) error {
	fmt.Fprintln(a.Out, "\nRecent events:")
	if len(events) == 0 {
		fmt.Fprintln(a.Out, "  <none>")
		return nil
	}
	t := newTable(a.Out, "  TIME", "AGENT", "TYPE", "STATUS", "OBJECT", "MESSAGE")
	for _, e := range events {
		cols := eventCols(e, names)
		cols[0] = "  " + cols[0]
		t.row(cols...)
	}
	return t.flush()
}

func (a *App) describeStack(ctx context.Context, ref string, out outputFlag) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	st, err := mustStack(ctx, c, ref)
	if err != nil {
		return err
	}
	labels, err := stackLabels(ctx, c, st.Id)
	if err != nil {
		return err
	}
	anns, _, err := api.Decode[[]api.StackAnnotation](c.ListStackAnnotations(ctx, st.Id))
	if err != nil {
		return err
	}
	latest, err := latestObject(ctx, c, st.Id)
	if err != nil {
		return err
	}
	agents, fleet, err := targetedAgents(ctx, c, st.Id)
	if err != nil {
		return err
	}
	var health *api.DeploymentObjectHealth
	var objEvents []api.AgentEvent
	if latest != nil {
		if h, _, err := api.Decode[api.DeploymentObjectHealth](c.GetDeploymentObjectHealth(ctx, latest.Id)); err == nil {
			health = &h
		}
		if evs, _, err := api.Decode[[]api.AgentEvent](c.ListAgentEvents(ctx, nil)); err == nil {
			for _, e := range evs {
				if e.DeploymentObjectId == latest.Id {
					objEvents = append(objEvents, e)
				}
			}
		}
	}
	sort.Slice(objEvents, func(i, j int) bool { return objEvents[i].CreatedAt.After(objEvents[j].CreatedAt) })
	type agentState struct {
		Agent  api.Agent         `json:"agent"`
		Event  *api.AgentEvent   `json:"last_event"`
		Health *api.HealthRecord `json:"health"`
	}
	var states []agentState
	for _, ag := range agents {
		s := agentState{Agent: ag}
		for i := range objEvents {
			if objEvents[i].AgentId == ag.Id && (objEvents[i].Status == "SUCCESS" || objEvents[i].Status == "FAILURE") {
				s.Event = &objEvents[i]
				break
			}
		}
		if health != nil {
			for i := range health.HealthRecords {
				if health.HealthRecords[i].AgentId == ag.Id {
					s.Health = &health.HealthRecords[i]
				}
			}
		}
		states = append(states, s)
	}
	recent := objEvents
	if len(recent) > 10 {
		recent = recent[:10]
	}
	if out.structured() {
		var lat *api.DeploymentObject
		if latest != nil {
			l := *latest
			l.YamlContent = ""
			lat = &l
		}
		return printValue(a.Out, out, map[string]any{
			"stack": st, "labels": labels, "annotations": anns, "latest_deployment_object": lat,
			"health": health, "agents": states, "recent_events": recent,
		})
	}
	var annStr []string
	for _, an := range anns {
		annStr = append(annStr, an.Key+"="+an.Value)
	}
	gen := "<system>"
	if !isSystemGenerator(st.GeneratorId) {
		gen = st.GeneratorId.String()
	}
	latestStr, overall := "<none>", "<none>"
	if latest != nil {
		latestStr = fmt.Sprintf("sequence %d (%s, %s ago)", latest.SequenceId, latest.Id, age(a.Now(), latest.CreatedAt))
		if latest.IsDeletionMarker {
			latestStr += ", deletion marker"
		}
	}
	if health != nil && health.OverallStatus != "" {
		overall = string(health.OverallStatus)
	}
	if err := a.fields("Name", st.Name, "ID", st.Id.String(), "Description", str(st.Description), "Generator", gen,
		"Labels", joinOrNone(labels), "Annotations", joinOrNone(annStr), "Latest", latestStr, "Health", overall); err != nil {
		return err
	}
	fmt.Fprintln(a.Out, "\nAgents:")
	if !fleet {
		fmt.Fprintln(a.Out, "  (this PAK may not list agents)")
	} else {
		t := newTable(a.Out, "  AGENT", "CLUSTER", "STATE", "HEALTH", "PODS", "MESSAGE")
		for _, s := range states {
			state, health, pods, msg := "pending", "<none>", "", ""
			if s.Event != nil {
				state, msg = s.Event.Status, truncate(str(s.Event.Message), 60)
			}
			if s.Health != nil {
				health = string(s.Health.Status)
				if s.Health.Summary != nil {
					sm := *s.Health.Summary
					pods = fmt.Sprintf("%v/%v", sm["pods_ready"], sm["pods_total"])
				}
			}
			t.row("  "+s.Agent.Name, s.Agent.ClusterName, state, health, pods, msg)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	names := map[uuid.UUID]string{}
	for _, ag := range agents {
		names[ag.Id] = ag.Name
	}
	return a.printRecentEvents(recent, names)
}

func (a *App) describeWorkOrder(ctx context.Context, ref string, out outputFlag) error {
	if err := out.check(); err != nil {
		return err
	}
	id, ok := parseID(ref)
	if !ok {
		return fmt.Errorf("%q is not a work-order id", ref)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	wo, raw, err := api.Decode[api.WorkOrder](c.GetWorkOrder(ctx, id))
	if err != nil {
		return err
	}
	if out.structured() {
		return printRaw(a.Out, out, raw)
	}
	prog := "<none>"
	if wo.Progress != nil {
		var parts []string
		if wo.Progress.Percent != nil {
			parts = append(parts, fmt.Sprintf("%d%%", *wo.Progress.Percent))
		}
		if wo.Progress.Message != nil {
			parts = append(parts, *wo.Progress.Message)
		}
		prog = strings.Join(parts, " ")
	}
	if err := a.fields("ID", wo.Id.String(), "Type", wo.WorkType, "Status", string(wo.Status),
		"Retries", fmt.Sprintf("%d of %d", wo.RetryCount, wo.MaxRetries), "Claimed by", uuidOrNone(wo.ClaimedBy),
		"Progress", prog, "Last error", str(wo.LastError), "Created", wo.CreatedAt.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	fmt.Fprintf(a.Out, "\nYAML:\n%s\n", indent(wo.YamlContent, "  "))
	return nil
}

func indent(s, p string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = p + lines[i]
	}
	return strings.Join(lines, "\n")
}
