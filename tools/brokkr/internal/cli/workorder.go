package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) workOrderCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "work-order", Aliases: []string{"wo"}, Short: "Create, follow, list and cancel work orders"}

	var file, typ string
	var agents, labels []string
	var maxRetries int
	var wait bool
	var timeout time.Duration
	create := &cobra.Command{
		Use:   "create --type custom|build -f FILE [--agent A]... [--target-label k:v]... [--max-retries N] [--wait]",
		Short: "Create a work order",
		Long: `create submits FILE's YAML as a work order of --type (custom: apply and wait, e.g. a Job;
build: a Shipwright build), targeted at agents by name/id (--agent) or label (--target-label).
With --wait it follows the order until it is COMPLETED (exit 0) or FAILED (exit 2), or the
timeout (exit 3). See docs/work-orders.md.`,
		Example: `  brokkr work-order create --type custom -f migrate-job.yaml --agent prod-1 --wait --timeout 10m
  brokkr work-order create --type build -f build.yaml --target-label builder:true`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" || typ == "" {
				return fmt.Errorf("work-order create needs --type and -f")
			}
			y, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			req := api.CreateWorkOrderRequest{WorkType: typ, YamlContent: string(y)}
			var tg api.WorkOrderTargeting
			if len(agents) > 0 {
				ids := []uuid.UUID{}
				for _, ref := range agents {
					ag, err := mustAgent(ctx, c, ref)
					if err != nil {
						return err
					}
					ids = append(ids, ag.Id)
				}
				tg.AgentIds = &ids
			}
			if len(labels) > 0 {
				tg.Labels = &labels
			}
			if tg.AgentIds != nil || tg.Labels != nil {
				req.Targeting = &tg
			}
			if cmd.Flags().Changed("max-retries") {
				req.MaxRetries = &maxRetries
			}
			wo, _, err := api.Decode[api.WorkOrder](c.CreateWorkOrder(ctx, nil, req))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "work-order/%s created (%s, %s)\n", wo.Id, wo.WorkType, wo.Status)
			if !wait {
				return nil
			}
			return a.waitWorkOrder(ctx, c, wo.Id, timeout)
		},
	}
	create.Flags().StringVarP(&file, "filename", "f", "", "YAML of the work order")
	create.Flags().StringVar(&typ, "type", "", "work type: custom or build")
	create.Flags().StringArrayVar(&agents, "agent", nil, "target agent (name, NAME@CLUSTER or id); repeatable")
	create.Flags().StringArrayVar(&labels, "target-label", nil, "target agents with this label; repeatable")
	create.Flags().IntVar(&maxRetries, "max-retries", 0, "retries before the order fails")
	create.Flags().BoolVar(&wait, "wait", false, "wait until the order COMPLETED or FAILED")
	create.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long --wait waits")

	var out outputFlag
	get := &cobra.Command{
		Use:     "get ID",
		Short:   "Show one work order (active or finished)",
		Example: "  brokkr work-order get 0b9e… -o yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.describeWorkOrder(cmd.Context(), args[0], out)
		},
	}
	get.Flags().StringVarP((*string)(&out), "output", "o", "table", "table, json or yaml")

	var logOut outputFlag
	logs := &cobra.Command{
		Use:   "logs [ID]",
		Short: "The work-order log: finished orders, or one entry",
		Example: `  brokkr work-order logs
  brokkr work-order logs 0b9e…`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := logOut.check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(args) == 1 {
				id, ok := parseID(args[0])
				if !ok {
					return fmt.Errorf("%q is not a work-order id", args[0])
				}
				e, raw, err := api.Decode[api.WorkOrderLog](c.GetWorkOrderLogEntry(ctx, id))
				if err != nil {
					return err
				}
				if logOut.structured() {
					return printRaw(a.Out, logOut, raw)
				}
				res := "FAILED"
				if e.Success {
					res = "COMPLETED"
				}
				fmt.Fprintf(a.Out, "ID:          %s\nType:        %s\nResult:      %s\nRetries:     %d\nClaimed by:  %s\nCompleted:   %s\nMessage:     %s\n",
					e.Id, e.WorkType, res, e.RetriesAttempted, uuidOrNone(e.ClaimedBy), e.CompletedAt.UTC().Format(time.RFC3339), str(e.ResultMessage))
				return nil
			}
			l, err := decodeList[api.WorkOrderLog](c.ListWorkOrderLog(ctx, &api.ListWorkOrderLogParams{}))
			if err != nil {
				return err
			}
			if logOut.structured() {
				return l.print(a, logOut)
			}
			now := a.Now()
			t := newTable(a.Out, "ID", "TYPE", "RESULT", "RETRIES", "COMPLETED", "MESSAGE")
			for _, e := range l.items {
				res := "FAILED"
				if e.Success {
					res = "COMPLETED"
				}
				t.row(e.Id.String(), e.WorkType, res, fmt.Sprint(e.RetriesAttempted), age(now, e.CompletedAt)+" ago", truncate(str(e.ResultMessage), 60))
			}
			return t.flush()
		},
	}
	logs.Flags().StringVarP((*string)(&logOut), "output", "o", "table", "table, json or yaml")

	var yes bool
	cancel := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel an active work order (asks unless --yes)",
		Example: "  brokkr work-order cancel 0b9e… --yes",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, ok := parseID(args[0])
			if !ok {
				return fmt.Errorf("%q is not a work-order id", args[0])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := a.confirm(yes, fmt.Sprintf("cancel work-order %s?", id)); err != nil {
				return err
			}
			if _, err := api.Read(c.CancelWorkOrder(cmd.Context(), id)); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "work-order/%s cancelled\n", id)
			return nil
		},
	}
	cancel.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	cmd.AddCommand(create, get, logs, cancel)
	return cmd
}

func uuidOrNone(id *uuid.UUID) string {
	if id == nil {
		return "<none>"
	}
	return id.String()
}

// waitWorkOrder polls GET /work-orders/{id} (paced, backing off to 5 s)
// until the order is COMPLETED or FAILED.
func (a *App) waitWorkOrder(ctx context.Context, c *api.Client, id uuid.UUID, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := a.PollMinimum
	last := ""
	for {
		wo, _, err := api.Decode[api.WorkOrder](c.GetWorkOrder(ctx, id))
		if api.IsStatus(err, http.StatusNotFound) {
			return &exitError{code: ExitFailed, err: fmt.Errorf("work-order %s was cancelled", id)}
		}
		if err != nil && ctx.Err() == nil {
			return err
		}
		if err == nil {
			st := string(wo.Status)
			if wo.Progress != nil && wo.Progress.Message != nil {
				st += ": " + *wo.Progress.Message
			}
			if st != last {
				fmt.Fprintf(a.Out, "work-order/%s %s\n", id, st)
				last, pause = st, a.PollMinimum
			}
			switch wo.Status {
			case "COMPLETED":
				return nil
			case "FAILED":
				return &exitError{code: ExitFailed, err: fmt.Errorf("work-order %s failed: %s", id, str(wo.LastError))}
			}
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &exitError{code: ExitTimeout, err: fmt.Errorf("timed out after %s waiting for work-order %s (last: %s)", timeout, id, last)}
			}
			return ctx.Err()
		case <-t.C:
		}
		if pause = pause * 3 / 2; pause > 5*time.Second {
			pause = 5 * time.Second
		}
	}
}
