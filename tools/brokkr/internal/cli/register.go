package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

// register, deregister and registrations call the original's registration
// routes; docs/cli.md says which brokers serve them.

// registrationHint explains a 404 that may mean "route not served".
func registrationHint(err error) error {
	if api.IsStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%w; hint: a broker without generator registration (before 0.9.1, or this broker before migration 0011) answers 404 to every registration call", err)
	}
	return err
}

// systemGeneratorID is the broker's system generator, which a system stack
// answers in generator_id (older brokers answer null, read as uuid.Nil).
var systemGeneratorID = uuid.MustParse("00000000-0000-4000-8000-000000000001")

func isSystemGenerator(id uuid.UUID) bool { return id == uuid.Nil || id == systemGeneratorID }

func uuidFlags(agent, generator string) (uuid.UUID, uuid.UUID, error) {
	a, err := uuid.Parse(agent)
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("--agent %q is not a UUID", agent)
	}
	g, err := uuid.Parse(generator)
	if err != nil {
		return uuid.Nil, uuid.Nil, fmt.Errorf("--generator %q is not a UUID", generator)
	}
	return a, g, nil
}

func (a *App) registerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "register --agent UUID --generator UUID",
		Short:   "Register an agent with a generator scope (admin PAK)",
		Example: "  brokkr register --agent 3f0c…-agent-id --generator 8a1d…-generator-id",
		Args:    cobra.NoArgs,
	}
	return a.pairCommand(cmd, "the agent to register (UUID)", "the generator scope (UUID)",
		func(ctx context.Context, c *api.Client, ag, gen uuid.UUID) error {
			reg, _, err := api.Decode[api.Registration](c.RegisterAgent(ctx, gen, api.AgentRegistrationBody{AgentId: &ag}))
			if err != nil {
				return registrationHint(err)
			}
			fmt.Fprintf(a.Out, "registered agent %s with generator %s (registration %s)\n", ag, gen, reg.Id)
			return nil
		})
}

func (a *App) deregisterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deregister --agent UUID --generator UUID",
		Short: "Remove an agent's registration with a generator scope (admin PAK)",
		Long: `deregister removes an agent's registration with a generator scope. Destructive: the
broker also removes the agent's targets on that generator's stacks, and the agent prunes
their resources on its next reconcile.`,
		Example: "  brokkr deregister --agent 3f0c…-agent-id --generator 8a1d…-generator-id",
		Args:    cobra.NoArgs,
	}
	return a.pairCommand(cmd, "the agent to deregister (UUID)", "the generator scope to remove (UUID)",
		func(ctx context.Context, c *api.Client, ag, gen uuid.UUID) error {
			if _, err := api.Read(c.DeregisterAgent(ctx, gen, api.AgentRegistrationBody{AgentId: &ag})); err != nil {
				return registrationHint(err)
			}
			fmt.Fprintf(a.Out, "deregistered agent %s from generator %s\n", ag, gen)
			return nil
		})
}

// pairCommand completes register and deregister: both take --agent and
// --generator (required UUIDs, checked before the broker is asked) and
// call do on the pair.
func (a *App) pairCommand(cmd *cobra.Command, agentHelp, generatorHelp string,
	do func(ctx context.Context, c *api.Client, ag, gen uuid.UUID) error) *cobra.Command {
	var agent, generator string
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ag, gen, err := uuidFlags(agent, generator)
		if err != nil {
			return err
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		return do(cmd.Context(), c, ag, gen)
	}
	cmd.Flags().StringVar(&agent, "agent", "", agentHelp)
	cmd.Flags().StringVar(&generator, "generator", "", generatorHelp)
	_ = cmd.MarkFlagRequired("agent")
	_ = cmd.MarkFlagRequired("generator")
	return cmd
}

func (a *App) registrationsCommand() *cobra.Command {
	var agent, generator string
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "registrations (--agent UUID | --generator UUID)",
		Short: "List an agent's generator scopes, or a generator's registered agents",
		Example: `  brokkr registrations --agent 3f0c…-agent-id
  brokkr registrations --generator 8a1d…-generator-id -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if (agent == "") == (generator == "") {
				return fmt.Errorf("exactly one of --agent or --generator is required")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var regs []api.Registration
			var raw []byte
			byAgent := agent != ""
			if byAgent {
				id, perr := uuid.Parse(agent)
				if perr != nil {
					return fmt.Errorf("--agent %q is not a UUID", agent)
				}
				regs, raw, err = api.Decode[[]api.Registration](c.ListAgentRegistrations(cmd.Context(), id))
			} else {
				id, perr := uuid.Parse(generator)
				if perr != nil {
					return fmt.Errorf("--generator %q is not a UUID", generator)
				}
				regs, raw, err = api.Decode[[]api.Registration](c.ListRegisteredAgents(cmd.Context(), id))
			}
			if err != nil {
				return registrationHint(err)
			}
			if out.structured() {
				return printRaw(a.Out, out, raw)
			}
			head := "GENERATOR"
			if !byAgent {
				head = "AGENT"
			}
			t := newTable(a.Out, head, "REGISTERED", "REGISTRATION")
			for _, r := range regs {
				id := r.GeneratorId
				if !byAgent {
					id = r.AgentId
				}
				t.row(id.String(), r.RegisteredAt.UTC().Format("2006-01-02T15:04:05Z"), r.Id.String())
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "list this agent's generator registrations")
	cmd.Flags().StringVar(&generator, "generator", "", "list this generator's registered agents")
	cmd.Flags().StringVarP((*string)(&out), "output", "o", "table", "table, json or yaml")
	cmd.MarkFlagsMutuallyExclusive("agent", "generator")
	return cmd
}
