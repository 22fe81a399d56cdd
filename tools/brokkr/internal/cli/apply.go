package cli

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
	"github.com/brokkr-go/brokkr/tools/brokkr/internal/bundle"
)

func (a *App) applyCommand() *cobra.Command {
	var file, stack string
	var labels []string
	var w waitFlags
	cmd := &cobra.Command{
		Use:   "apply -f DIR|FILE --stack NAME [--target-label k:v]... [--wait [--timeout 5m]]",
		Short: "Make a folder of manifests the desired state of a stack (created if absent)",
		Long: `apply reads the top-level *.yaml/*.yml files of DIR in name order (or one FILE), checks
that every document has apiVersion and kind, and submits them as the stack's new deployment
object, creating the stack if it does not exist. It is idempotent: when the stack's latest
deployment object already has this content (same SHA-256), nothing is submitted.

It prints exactly one of:
  created stack "<name>": first revision (sequence <n>)
  updated stack "<name>": new revision (sequence <n>)
  unchanged: stack "<name>" already current

With --wait it then follows every agent the stack is targeted at until each reported
SUCCESS or FAILURE for that deployment object: exit 0 if all succeeded, 2 if any failed,
3 on timeout.`,
		Example: `  brokkr apply -f ./manifests --stack payments --target-label env:prod
  BROKKR_BROKER_URL=$URL BROKKR_PAK=$GENERATOR_PAK brokkr apply -f k8s/ --stack web --wait --timeout 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || stack == "" {
				return fmt.Errorf("apply needs -f/--filename and --stack")
			}
			content, err := bundle.Read(file)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			obj, err := a.apply(ctx, c, stack, content, labels)
			if err != nil {
				return err
			}
			if !w.wait {
				return nil
			}
			return a.waitFor(ctx, c, obj, w)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "folder of manifests (top-level *.yaml/*.yml, sorted) or a single file")
	cmd.Flags().StringVar(&stack, "stack", "", "stack name; created if absent")
	cmd.Flags().StringArrayVar(&labels, "target-label", nil, "targeting label for agent fan-out (e.g. env:prod); repeatable, additive")
	w.register(cmd)
	return cmd
}

// apply submits content as the stack's desired state and prints the
// original's line. It returns the stack's current deployment object.
func (a *App) apply(ctx context.Context, c *api.Client, name, content string, labels []string) (*applied, error) {
	st, err := findStack(ctx, c, name)
	if err != nil {
		return nil, err
	}
	created := false
	if st == nil {
		s, _, err := api.Decode[api.Stack](c.CreateStack(ctx, nil, api.CreateStackRequest{Name: name}))
		if err != nil {
			return nil, fmt.Errorf("creating stack %q: %w", name, err)
		}
		st, created = &s, true
	}
	if err := ensureStackLabels(ctx, c, st.Id, labels); err != nil {
		return nil, err
	}
	latest, err := latestObject(ctx, c, st.Id)
	if err != nil {
		return nil, err
	}
	if latest != nil && !latest.IsDeletionMarker && latest.YamlChecksum == bundle.Checksum(content) {
		fmt.Fprintf(a.Out, "unchanged: stack %q already current\n", name)
		return &applied{stack: *st, object: *latest}, nil
	}
	marker := false
	obj, _, err := api.Decode[api.DeploymentObject](c.CreateDeploymentObject(ctx, st.Id, nil,
		api.CreateDeploymentObjectRequest{YamlContent: content, IsDeletionMarker: &marker}))
	if err != nil {
		return nil, fmt.Errorf("submitting the bundle to stack %q: %w", name, err)
	}
	if created || latest == nil {
		fmt.Fprintf(a.Out, "created stack %q: first revision (sequence %d)\n", name, obj.SequenceId)
	} else {
		fmt.Fprintf(a.Out, "updated stack %q: new revision (sequence %d)\n", name, obj.SequenceId)
	}
	return &applied{stack: *st, object: obj}, nil
}

type applied struct {
	stack  api.Stack
	object api.DeploymentObject
}

// ensureStackLabels adds the labels the stack lacks; present ones are left
// as they are (a 409 from a concurrent run counts as present).
func ensureStackLabels(ctx context.Context, c *api.Client, stack uuid.UUID, labels []string) error {
	if len(labels) == 0 {
		return nil
	}
	have, _, err := api.Decode[[]api.StackLabel](c.ListStackLabels(ctx, stack))
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, l := range have {
		present[l.Label] = true
	}
	for _, l := range labels {
		if present[l] {
			continue
		}
		var body api.StackLabelRequest
		if err := body.FromLabel(l); err != nil {
			return err
		}
		if _, _, err := api.Decode[api.StackLabel](c.AddStackLabel(ctx, stack, nil, body)); err != nil && !api.IsStatus(err, http.StatusConflict) {
			return fmt.Errorf("adding target label %q: %w", l, err)
		}
		present[l] = true
	}
	return nil
}

type waitFlags struct {
	wait    bool
	timeout time.Duration
	expect  int
}

func (w *waitFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&w.wait, "wait", false, "wait until every targeted agent reported SUCCESS or FAILURE for the deployment object")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 5*time.Minute, "how long --wait waits")
	cmd.Flags().IntVar(&w.expect, "expect-agents", 0, "with a generator PAK (which cannot list agents): how many agents --wait waits for (default 1)")
}
