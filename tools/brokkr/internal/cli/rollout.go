package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// rolloutPhases are the per-wave counts the status table shows, in the
// order an agent goes through them (docs/rollouts.md#status-and-control).
var rolloutPhases = []string{"pending", "released", "applied", "healthy", "failed"}

func (a *App) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Show and control a stack's progressive rollout and its policy",
		Long: `rollout reads and sets a stack's rollout policy, shows its newest rollout wave by wave,
and pauses, resumes, promotes or aborts it. STACK is a name or an id. See docs/rollouts.md.`,
	}
	policy := &cobra.Command{Use: "policy", Short: "Get or replace a stack's rollout policy"}
	get := a.stackCommand(&cobra.Command{
		Use:     "get STACK",
		Short:   "Show the stack's rollout policy",
		Example: "  brokkr rollout policy get payments -o yaml",
	}, func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error {
		p, raw, err := api.Decode[api.RolloutPolicy](c.GetRolloutPolicy(ctx, st.Id))
		if err != nil {
			return err
		}
		return a.printPolicy(out, p, raw)
	})

	var file string
	var body []byte
	set := a.stackCommand(&cobra.Command{
		Use:   "set STACK -f FILE",
		Short: "Replace the stack's rollout policy with FILE (JSON or YAML)",
		Long: `set sends FILE (JSON or YAML) as the stack's whole rollout policy: missing fields take
the defaults. It applies to objects created afterwards; a running rollout keeps its policy.`,
		Example: `  brokkr rollout policy set payments -f policy.yaml
  brokkr rollout policy set payments -f policy.json -o json`,
		PreRunE: func(*cobra.Command, []string) error {
			if file == "" {
				return fmt.Errorf("rollout policy set needs -f")
			}
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			// YAML is a superset of JSON: either becomes the JSON body as
			// written, so the broker validates exactly what the file says.
			if body, err = yaml.YAMLToJSON(b); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return nil
		},
	}, func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error {
		p, raw, err := api.Decode[api.RolloutPolicy](c.PutRolloutPolicyWithBody(ctx, st.Id, "application/json", bytes.NewReader(body)))
		if err != nil {
			return err
		}
		if !out.structured() {
			fmt.Fprintf(a.Out, "stack/%s rollout policy set\n", st.Name)
		}
		return a.printPolicy(out, p, raw)
	})
	set.Flags().StringVarP(&file, "filename", "f", "", "the policy, JSON or YAML")
	policy.AddCommand(get, set)

	status := a.stackCommand(&cobra.Command{
		Use:   "status STACK",
		Short: "Show the stack's newest rollout, wave by wave",
		Example: `  brokkr rollout status payments
  brokkr rollout status payments -o json`,
	}, func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error {
		return a.printRollout(out, st, "")(api.Decode[api.RolloutStatus](c.GetRollout(ctx, st.Id)))
	})
	cmd.AddCommand(policy, status)

	for _, act := range []struct {
		name, past, short string
		call              func(*api.Client, context.Context, uuid.UUID, ...api.RequestEditorFn) (*http.Response, error)
	}{
		{"pause", "paused", "Stop releasing agents until resume", (*api.Client).PauseRollout},
		{"resume", "resumed", "Go on with a paused or halted rollout", (*api.Client).ResumeRollout},
		{"promote", "promoted", "Release the current wave's pending agents now and start the next wave", (*api.Client).PromoteRollout},
		{"abort", "aborted", "End the rollout (final); released agents keep the object", (*api.Client).AbortRollout},
	} {
		cmd.AddCommand(a.stackCommand(&cobra.Command{
			Use:     act.name + " STACK",
			Short:   act.short,
			Example: "  brokkr rollout " + act.name + " payments",
		}, func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error {
			s, raw, err := api.Decode[api.RolloutStatus](act.call(c, ctx, st.Id))
			return a.printRollout(out, st, act.past)(s, raw, rolloutConflict(err, st))
		}))
	}
	return cmd
}

func (a *App) rollbackCommand() *cobra.Command {
	var toSeq int64
	var object, target string
	var req api.RollbackRequest
	cmd := a.stackCommand(&cobra.Command{
		Use:   "rollback STACK --to-sequence N | --object ID",
		Short: "Create a new deployment object with an earlier object's YAML",
		Long: `rollback creates a new deployment object on STACK with the YAML of the object of sequence
--to-sequence, or of deployment object --object, and ends the stack's unfinished rollout as
rolled_back. The new object reaches every associated agent at once. See docs/rollouts.md#rollback.`,
		Example: `  brokkr rollback payments --to-sequence 41
  brokkr rollback payments --object 0b9e…`,
		PreRunE: func(*cobra.Command, []string) error {
			switch {
			case object != "" && toSeq != 0:
				return fmt.Errorf("rollback takes --to-sequence or --object, not both")
			case object != "":
				id, ok := parseID(object)
				if !ok {
					return fmt.Errorf("--object %q is not a deployment-object id", object)
				}
				req.DeploymentObjectId, target = &id, "object "+id.String()
			case toSeq > 0:
				req.ToSequenceId, target = &toSeq, fmt.Sprintf("sequence %d", toSeq)
			default:
				return fmt.Errorf("rollback needs --to-sequence N or --object ID")
			}
			return nil
		},
	}, func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error {
		o, raw, err := api.Decode[api.DeploymentObject](c.RollbackStack(ctx, st.Id, nil, req))
		if err != nil {
			return err
		}
		if out.structured() {
			return printRaw(a.Out, out, raw)
		}
		fmt.Fprintf(a.Out, "stack/%s rolled back to %s: new deployment object %s (sequence %d)\n", st.Name, target, o.Id, o.SequenceId)
		return nil
	})
	cmd.Flags().Int64Var(&toSeq, "to-sequence", 0, "restore the object of this sequence id")
	cmd.Flags().StringVar(&object, "object", "", "restore this deployment object (id)")
	return cmd
}

// stackCommand completes cmd into a command whose one argument is a stack
// (name or id) and that takes -o: it checks -o, gets the client, resolves
// the stack and runs run. Flag checks that need no broker go in PreRunE.
func (a *App) stackCommand(cmd *cobra.Command, run func(ctx context.Context, c *api.Client, st *api.Stack, out outputFlag) error) *cobra.Command {
	var out outputFlag
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.check(); err != nil {
			return err
		}
		return a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			st, err := mustStack(ctx, c, args[0])
			if err != nil {
				return err
			}
			return run(ctx, c, st, out)
		})(cmd, args)
	}
	cmd.Flags().StringVarP((*string)(&out), "output", "o", "table", "table, json or yaml")
	return cmd
}

// rolloutConflict makes a 409 rollout_state_conflict name the stack, the
// code, and the command that shows the state which refused the action.
func rolloutConflict(err error, st *api.Stack) error {
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Code == "rollout_state_conflict" {
		return &conflictError{ae: ae, stack: st.Name}
	}
	return err
}

type conflictError struct {
	ae    *api.APIError
	stack string
}

func (e *conflictError) Error() string {
	return fmt.Sprintf("rollout of stack %q: %s (%d %s, %s); hint: `brokkr rollout status %s` shows its state",
		e.stack, e.ae.Message, e.ae.Status, http.StatusText(e.ae.Status), e.ae.Code, e.stack)
}

func (e *conflictError) Unwrap() error { return e.ae }

func (a *App) printPolicy(out outputFlag, p api.RolloutPolicy, raw []byte) error {
	if out.structured() {
		return printRaw(a.Out, out, raw)
	}
	y, err := yaml.JSONToYAML(raw)
	if err != nil {
		return err
	}
	if _, err := a.Out.Write(y); err != nil {
		return err
	}
	if p.Strategy == nil || *p.Strategy == api.All {
		fmt.Fprintln(a.Out, "# strategy all: every new object reaches every associated agent at once")
	}
	return nil
}

// printRollout returns the printer of a rollout status answer: raw for
// -o json|yaml, otherwise a header and one table row per wave. past is the
// action just done ("" for status).
func (a *App) printRollout(out outputFlag, st *api.Stack, past string) func(api.RolloutStatus, []byte, error) error {
	return func(s api.RolloutStatus, raw []byte, err error) error {
		if err != nil {
			return err
		}
		if out.structured() {
			return printRaw(a.Out, out, raw)
		}
		if past != "" {
			fmt.Fprintf(a.Out, "stack/%s rollout %s\n", st.Name, past)
		}
		strategy := "all"
		if s.Policy.Strategy != nil {
			strategy = string(*s.Policy.Strategy)
		}
		state := string(s.State)
		if s.Reason != nil && *s.Reason != "" {
			state += " (" + *s.Reason + ")"
		}
		wave := "not started"
		if s.CurrentWave >= 0 {
			wave = fmt.Sprintf("%d of %d", s.CurrentWave+1, len(s.Waves))
		}
		fmt.Fprintf(a.Out, "Stack:       %s (%s)\nRollout:     %s\nObject:      sequence %d (%s)\nStrategy:    %s\nState:       %s\nWave:        %s\n\n",
			st.Name, st.Id, s.Id, s.SequenceId, s.DeploymentObjectId, strategy, state, wave)
		t := newTable(a.Out, append([]string{"WAVE", "NAME", "STATE"}, upper(rolloutPhases)...)...)
		for i, w := range s.Waves {
			row := []string{fmt.Sprint(i + 1), str(w.Name), "<none>"}
			if w.State != nil {
				row[2] = string(*w.State)
			}
			for _, ph := range rolloutPhases {
				n := 0
				if w.Counts != nil {
					n = (*w.Counts)[ph]
				}
				row = append(row, fmt.Sprint(n))
			}
			t.row(row...)
		}
		return t.flush()
	}
}

func upper(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToUpper(x)
	}
	return out
}
