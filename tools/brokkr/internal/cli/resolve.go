package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// The broker addresses everything by id; people use names. These helpers
// accept either: a UUID is used as is (one GET confirms it exists), a name
// is looked up in the list.

func parseID(s string) (uuid.UUID, bool) {
	id, err := uuid.Parse(strings.TrimSpace(s))
	return id, err == nil
}

func findStack(ctx context.Context, c *api.Client, nameOrID string) (*api.Stack, error) {
	if id, ok := parseID(nameOrID); ok {
		st, _, err := api.Decode[api.Stack](c.GetStack(ctx, id))
		if err != nil {
			return nil, err
		}
		return &st, nil
	}
	stacks, _, err := api.Decode[[]api.Stack](c.ListStacks(ctx, nil))
	if err != nil {
		return nil, err
	}
	for i := range stacks {
		if stacks[i].Name == nameOrID {
			return &stacks[i], nil
		}
	}
	return nil, nil
}

func mustStack(ctx context.Context, c *api.Client, nameOrID string) (*api.Stack, error) {
	st, err := findStack(ctx, c, nameOrID)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("stack %q not found", nameOrID)
	}
	return st, nil
}

// mustAgent accepts an id, a name, or NAME@CLUSTER when a name is used in
// more than one cluster.
func mustAgent(ctx context.Context, c *api.Client, ref string) (*api.Agent, error) {
	if id, ok := parseID(ref); ok {
		ag, _, err := api.Decode[api.Agent](c.GetAgent(ctx, id))
		if err != nil {
			return nil, err
		}
		return &ag, nil
	}
	name, cluster, _ := strings.Cut(ref, "@")
	agents, _, err := api.Decode[[]api.Agent](c.ListAgents(ctx))
	if err != nil {
		return nil, err
	}
	var found []api.Agent
	for _, a := range agents {
		if a.Name == name && (cluster == "" || a.ClusterName == cluster) {
			found = append(found, a)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("agent %q not found", ref)
	case 1:
		return &found[0], nil
	}
	var names []string
	for _, a := range found {
		names = append(names, a.Name+"@"+a.ClusterName)
	}
	return nil, fmt.Errorf("agent name %q is used in several clusters; say which: %s", name, strings.Join(names, ", "))
}

func mustTemplate(ctx context.Context, c *api.Client, ref string) (*api.StackTemplate, error) {
	if id, ok := parseID(ref); ok {
		t, _, err := api.Decode[api.StackTemplate](c.GetTemplate(ctx, id))
		if err != nil {
			return nil, err
		}
		return &t, nil
	}
	ts, _, err := api.Decode[[]api.StackTemplate](c.ListTemplates(ctx))
	if err != nil {
		return nil, err
	}
	var best *api.StackTemplate
	for i := range ts {
		if ts[i].Name == ref && (best == nil || ts[i].Version > best.Version) {
			best = &ts[i]
		}
	}
	if best == nil {
		return nil, fmt.Errorf("template %q not found", ref)
	}
	return best, nil
}

func mustGenerator(ctx context.Context, c *api.Client, ref string) (*api.Generator, error) {
	if id, ok := parseID(ref); ok {
		g, _, err := api.Decode[api.Generator](c.GetGenerator(ctx, id))
		if err != nil {
			return nil, err
		}
		return &g, nil
	}
	gs, _, err := api.Decode[[]api.Generator](c.ListGenerators(ctx))
	if err != nil {
		return nil, err
	}
	for i := range gs {
		if gs[i].Name == ref {
			return &gs[i], nil
		}
	}
	return nil, fmt.Errorf("generator %q not found", ref)
}

func mustWebhook(ctx context.Context, c *api.Client, ref string) (*api.WebhookSubscription, error) {
	if id, ok := parseID(ref); ok {
		w, _, err := api.Decode[api.WebhookSubscription](c.GetWebhook(ctx, id))
		if err != nil {
			return nil, err
		}
		return &w, nil
	}
	ws, _, err := api.Decode[[]api.WebhookSubscription](c.ListWebhooks(ctx))
	if err != nil {
		return nil, err
	}
	for i := range ws {
		if ws[i].Name == ref {
			return &ws[i], nil
		}
	}
	return nil, fmt.Errorf("webhook %q not found", ref)
}

// latestObject returns the stack's deployment object with the highest
// sequence_id, or nil.
func latestObject(ctx context.Context, c *api.Client, stack uuid.UUID) (*api.DeploymentObject, error) {
	objs, _, err := api.Decode[[]api.DeploymentObject](c.ListStackDeploymentObjects(ctx, stack))
	if err != nil {
		return nil, err
	}
	var best *api.DeploymentObject
	for i := range objs {
		if best == nil || objs[i].SequenceId > best.SequenceId {
			best = &objs[i]
		}
	}
	return best, nil
}
