package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) diagnoseCommand() *cobra.Command {
	var agent string
	var timeout time.Duration
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "diagnose DEPLOYMENT_OBJECT|STACK --agent A [--timeout 2m]",
		Short: "Ask an agent for pod statuses, events and log tails of a deployment object",
		Long: `diagnose requests an on-demand diagnostic from agent A for the deployment object (its id,
or a stack name for the stack's latest object), waits until the agent collected it, and
prints the pod statuses, Kubernetes events and log tails.`,
		Example: `  brokkr diagnose payments --agent prod-1
  brokkr diagnose 6f1c2a…-object-id --agent prod-1 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if agent == "" {
				return fmt.Errorf("diagnose needs --agent")
			}
			if err := out.check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ag, err := mustAgent(ctx, c, agent)
			if err != nil {
				return err
			}
			objID, ok := parseID(args[0])
			if !ok {
				st, err := mustStack(ctx, c, args[0])
				if err != nil {
					return err
				}
				obj, err := latestObject(ctx, c, st.Id)
				if err != nil {
					return err
				}
				if obj == nil {
					return fmt.Errorf("stack %q has no deployment object", st.Name)
				}
				objID = obj.Id
			}
			who := "brokkr-cli"
			req, _, err := api.Decode[api.DiagnosticRequest](c.RequestDiagnostics(ctx, objID, nil, api.DiagnosticCreateRequest{AgentId: ag.Id, RequestedBy: &who}))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Err, "diagnostic %s requested from %s; waiting for the agent…\n", req.Id, ag.Name)
			view, raw, err := a.waitDiagnostic(ctx, c, req.Id, timeout)
			if err != nil {
				return err
			}
			if out.structured() {
				return printRaw(a.Out, out, raw)
			}
			if view.Result == nil {
				return &exitError{code: ExitFailed, err: fmt.Errorf("diagnostic %s ended %s without a result", req.Id, view.Request.Status)}
			}
			r := view.Result
			if r.Error != nil && *r.Error != "" {
				fmt.Fprintf(a.Out, "Collection error: %s\n\n", *r.Error)
			}
			fmt.Fprintf(a.Out, "Pod statuses:\n%s\n\nEvents:\n%s\n\nLog tails:\n%s\n", indent(r.PodStatuses, "  "), indent(r.Events, "  "), indent(str(r.LogTails), "  "))
			return nil
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "the agent that collects (name, NAME@CLUSTER or id)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for the agent")
	cmd.Flags().StringVarP((*string)(&out), "output", "o", "table", "text, json or yaml")
	return cmd
}

func (a *App) waitDiagnostic(ctx context.Context, c *api.Client, id uuid.UUID, timeout time.Duration) (api.DiagnosticView, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := a.PollMinimum
	for {
		v, raw, err := api.Decode[api.DiagnosticView](c.GetDiagnostic(ctx, id))
		if err != nil && ctx.Err() == nil {
			return v, nil, err
		}
		if err == nil {
			switch v.Request.Status {
			case api.DiagnosticRequestStatusCompleted, api.DiagnosticRequestStatusFailed, api.DiagnosticRequestStatusExpired:
				return v, raw, nil
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return v, nil, &exitError{code: ExitTimeout, err: fmt.Errorf("timed out after %s waiting for diagnostic %s", timeout, id)}
			}
			return v, nil, ctx.Err()
		case <-t.C:
		}
		if pause = pause * 3 / 2; pause > 5*time.Second {
			pause = 5 * time.Second
		}
	}
}
