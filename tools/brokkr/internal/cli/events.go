package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) eventsCommand() *cobra.Command {
	var f getFlags
	var watch bool
	cmd := &cobra.Command{
		Use:   "events [--watch] [--agent A] [--stack S] [-o json]",
		Short: "Agent events; --watch streams new ones",
		Long: `events prints agent events (newest last). With --watch it keeps printing new ones until
interrupted. The broker offers no long-poll for events, so --watch polls GET /agent-events:
every second while events arrive, backing off to every 10 s while none do (no busy loop).
-o json prints one JSON object per line.`,
		Example: `  brokkr events --watch --stack payments
  brokkr events --agent prod-1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.out.check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.events(cmd.Context(), c, f, watch)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep printing new events")
	cmd.Flags().StringVar(&f.agent, "agent", "", "only this agent's events")
	cmd.Flags().StringVar(&f.stack, "stack", "", "only events on this stack's deployment objects")
	cmd.Flags().StringVarP((*string)(&f.out), "output", "o", "table", "table or json (one object per line)")
	return cmd
}

func (a *App) events(ctx context.Context, c *api.Client, f getFlags, watch bool) error {
	seen := map[uuid.UUID]bool{}
	header := false
	pause := a.PollMinimum
	for {
		keep, names, err := eventFilter(ctx, c, f.agent, f.stack)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		l, err := decodeList[api.AgentEvent](c.ListAgentEvents(ctx, nil))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		l = l.filter(keep)
		// The broker lists newest first; print oldest first.
		fresh := 0
		for i := len(l.items) - 1; i >= 0; i-- {
			e := l.items[i]
			if seen[e.Id] {
				continue
			}
			seen[e.Id] = true
			fresh++
			if f.out == "json" {
				fmt.Fprintf(a.Out, "%s\n", l.raw[i])
				continue
			}
			if !header {
				fmt.Fprintf(a.Out, "%-20s  %-16s  %-10s  %-8s  %-8s  %s\n", "TIME", "AGENT", "TYPE", "STATUS", "OBJECT", "MESSAGE")
				header = true
			}
			col := eventCols(e, names)
			fmt.Fprintf(a.Out, "%-20s  %-16s  %-10s  %-8s  %-8s  %s\n", col[0], col[1], col[2], col[3], col[4], col[5])
		}
		if !watch {
			return nil
		}
		if fresh > 0 {
			pause = a.PollMinimum
		} else if pause *= 2; pause > 10*time.Second {
			pause = 10 * time.Second
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
