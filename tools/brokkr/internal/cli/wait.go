package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// waitFor follows the agents a stack is targeted at until each reported
// SUCCESS or FAILURE for the deployment object. The broker has no long-poll
// for events, so it polls GET /agent-events, starting at PollMinimum and
// backing off (×1.5, at most 5 s) while nothing changes.
func (a *App) waitFor(ctx context.Context, c *api.Client, ap *applied, w waitFlags) error {
	deadline := a.Now().Add(w.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	obj := ap.object
	targets, fleetVisible, err := targetedAgents(ctx, c, ap.stack.Id)
	if err != nil {
		return err
	}
	expect := len(targets)
	if !fleetVisible {
		expect = w.expect
		if expect <= 0 {
			expect = 1
		}
	} else if expect == 0 {
		return fmt.Errorf("no agent is targeted by stack %q (no explicit target and no shared label or annotation); nothing to wait for", ap.stack.Name)
	}
	names := map[uuid.UUID]string{}
	for _, t := range targets {
		names[t.Id] = t.Name + " (" + t.ClusterName + ")"
	}
	name := func(id uuid.UUID) string {
		if n, ok := names[id]; ok {
			return n
		}
		return id.String()
	}
	tty := a.IsTerminal(a.Out)
	final := map[uuid.UUID]api.AgentEvent{}
	printed := map[uuid.UUID]string{}
	pause := a.PollMinimum
	for {
		events, _, err := api.Decode[[]api.AgentEvent](c.ListAgentEvents(ctx, nil))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		changed := false
		for _, e := range events {
			if e.DeploymentObjectId != obj.Id || (e.Status != "SUCCESS" && e.Status != "FAILURE") {
				continue
			}
			if fleetVisible {
				if _, ok := names[e.AgentId]; !ok {
					continue
				}
			}
			if prev, ok := final[e.AgentId]; !ok || e.CreatedAt.After(prev.CreatedAt) {
				final[e.AgentId] = e
			}
		}
		for id, e := range final {
			if printed[id] != e.Status {
				printed[id] = e.Status
				changed = true
				if !tty {
					fmt.Fprintln(a.Out, agentLine(name(id), e))
				}
			}
		}
		ok, failed := 0, 0
		var firstFail string
		for _, id := range sortedIDs(final) {
			if final[id].Status == "SUCCESS" {
				ok++
			} else {
				failed++
				if firstFail == "" {
					firstFail = name(id) + ": " + message(final[id])
				}
			}
		}
		if tty {
			line := fmt.Sprintf("%d/%d applied", ok, expect)
			if failed > 0 {
				line += fmt.Sprintf(", %d failed: %s", failed, firstFail)
			}
			fmt.Fprintf(a.Out, "\r\033[K%s", line)
		}
		if ok+failed >= expect {
			if tty {
				fmt.Fprintln(a.Out)
			}
			if failed > 0 {
				return &exitError{code: ExitFailed, err: fmt.Errorf("%d of %d agents failed to apply stack %q (sequence %d): %s",
					failed, expect, ap.stack.Name, obj.SequenceId, firstFail)}
			}
			fmt.Fprintf(a.Out, "applied: stack %q (sequence %d) on %d of %d agents\n", ap.stack.Name, obj.SequenceId, ok, expect)
			return nil
		}
		if changed {
			pause = a.PollMinimum
		} else if pause = pause * 3 / 2; pause > 5*time.Second {
			pause = 5 * time.Second
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
	}
	if tty {
		fmt.Fprintln(a.Out)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		var missing []string
		for _, t := range targets {
			if _, ok := final[t.Id]; !ok {
				missing = append(missing, name(t.Id))
			}
		}
		msg := fmt.Sprintf("timed out after %s: %d of %d agents reported for stack %q (sequence %d)", w.timeout, len(final), expect, ap.stack.Name, obj.SequenceId)
		if len(missing) > 0 {
			msg += "; still waiting for " + strings.Join(missing, ", ")
		}
		return &exitError{code: ExitTimeout, err: errors.New(msg)}
	}
	return ctx.Err()
}

func agentLine(name string, e api.AgentEvent) string {
	if e.Status == "SUCCESS" {
		return fmt.Sprintf("%s: applied", name)
	}
	return fmt.Sprintf("%s: failed: %s", name, message(e))
}

func message(e api.AgentEvent) string {
	if e.Message == nil || *e.Message == "" {
		return strings.ToLower(e.Status)
	}
	return *e.Message
}

func sortedIDs[V any](m map[uuid.UUID]V) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids
}

// targetedAgents lists the ACTIVE agents whose associated stacks (explicit
// target, shared label or annotation: GET /agents/{id}/stacks) include the
// stack. Only the admin sees the fleet: a generator PAK lists only the
// agents registered with it (0.9.1; older brokers: 403) and may not read
// their stacks, so for anyone else fleetVisible is false.
func targetedAgents(ctx context.Context, c *api.Client, stack uuid.UUID) ([]api.Agent, bool, error) {
	if who, _, err := api.Decode[api.AuthPayload](c.VerifyPak(ctx)); err == nil && !who.Admin {
		return nil, false, nil
	}
	agents, _, err := api.Decode[[]api.Agent](c.ListAgents(ctx))
	if api.IsStatus(err, http.StatusForbidden) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out []api.Agent
	for _, ag := range agents {
		if ag.Status != "ACTIVE" {
			continue
		}
		stacks, _, err := api.Decode[[]api.Stack](c.ListAgentStacks(ctx, ag.Id))
		if err != nil {
			return nil, false, err
		}
		for _, s := range stacks {
			if s.Id == stack {
				out = append(out, ag)
				break
			}
		}
	}
	return out, true, nil
}
