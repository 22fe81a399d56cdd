package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	generatorscope "github.com/brokkr-go/brokkr/pkg/domain/generator"
	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) createCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: "Create a stack, agent, generator, template or webhook"}

	var stackLabels, stackDeps []string
	var stackDesc, stackGen string
	stack := &cobra.Command{
		Use:   "stack NAME [--label k:v]... [--description TEXT] [--generator NAME_OR_ID] [--depends-on STACK]...",
		Short: "Create a stack",
		Example: `  brokkr create stack myapp-staging --label env:staging --description 'My app - staging'
  brokkr create stack myapp --depends-on myapp-crds --depends-on myapp-db`,
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			req := api.CreateStackRequest{Name: args[0]}
			if stackDesc != "" {
				req.Description = &stackDesc
			}
			if stackGen != "" {
				g, err := mustGenerator(ctx, c, stackGen)
				if err != nil {
					return err
				}
				req.GeneratorId = &g.Id
			}
			if len(stackDeps) > 0 {
				deps := make(api.DependsOn, 0, len(stackDeps))
				for _, d := range stackDeps {
					dep, err := mustStack(ctx, c, d)
					if err != nil {
						return err
					}
					deps = append(deps, dep.Id)
				}
				req.DependsOn = &deps
			}
			st, raw, err := api.Decode[api.Stack](c.CreateStack(ctx, nil, req))
			if err != nil {
				return err
			}
			if err := ensureStackLabels(ctx, c, st.Id, stackLabels); err != nil {
				return err
			}
			_ = raw
			fmt.Fprintf(a.Out, "stack/%s created (%s)\n", st.Name, st.Id)
			return nil
		}),
	}
	stack.Flags().StringArrayVar(&stackLabels, "label", nil, "label (k:v); repeatable")
	stack.Flags().StringVar(&stackDesc, "description", "", "description")
	stack.Flags().StringVar(&stackGen, "generator", "", "owning generator (admin only; default: a system stack, or the calling generator)")
	stack.Flags().StringArrayVar(&stackDeps, "depends-on", nil, "a stack (name or id) this one depends on (docs/dependencies.md); repeatable")

	var cluster string
	var agentLabelsFlag, agentGenerators []string
	agent := &cobra.Command{
		Use:   "agent NAME --cluster CLUSTER [--label k:v]... [--generator-ids UUID,...]",
		Short: "Register an agent; prints its PAK once",
		Long: `create agent registers an agent and prints its PAK, once: the broker keeps only a hash.
The agent is registered with the system generator (the fleet scope) and with every
generator of --generator-ids (comma-separated UUIDs, repeatable), in the same request; an
unknown id fails the whole command and creates nothing.
The output has the original broker CLI's lines (Agent created successfully:, ID:, Name:,
Cluster:, Initial PAK:, Registered with:).`,
		Example: `  brokkr create agent prod-1 --cluster us-east-1 --label env:production
  brokkr create agent prod-1 --cluster us-east-1 --generator-ids f8e7d6c5-b4a3-2109-8765-432109876543
  PAK=$(brokkr create agent prod-1 --cluster us-east-1 | sed -n 's/^Initial PAK: //p')`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cluster == "" {
				return fmt.Errorf("create agent needs --cluster")
			}
			gens, err := generatorscope.ParseIDs(agentGenerators)
			if err != nil {
				return fmt.Errorf("--generator-ids: %w", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			req := api.CreateAgentRequest{Name: args[0], ClusterName: cluster}
			if len(gens) > 0 {
				req.GeneratorIds = &gens
			}
			res, _, err := api.Decode[api.CreateAgentResponse](c.CreateAgent(ctx, nil, req))
			if err != nil {
				return err
			}
			for _, l := range agentLabelsFlag {
				if err := addAgentLabel(ctx, c, res.Agent.Id, l); err != nil {
					return err
				}
			}
			pak := res.InitialPak
			if pak == "" {
				pak = res.Pak
			}
			fmt.Fprintf(a.Out, "Agent created successfully:\nID: %s\nName: %s\nCluster: %s\nInitial PAK: %s\nRegistered with: %s\n",
				res.Agent.Id, res.Agent.Name, res.Agent.ClusterName, pak, generatorscope.RegisteredWith(gens))
			return nil
		},
	}
	agent.Flags().StringVar(&cluster, "cluster", "", "cluster name")
	agent.Flags().StringVar(&cluster, "cluster-name", "", "alias of --cluster")
	agent.Flags().StringArrayVar(&agentLabelsFlag, "label", nil, "label (k:v); repeatable")
	agent.Flags().StringArrayVar(&agentGenerators, "generator-ids", nil, "generators to register the agent with besides the system generator (comma-separated UUIDs; repeatable)")

	var genDesc string
	generator := &cobra.Command{
		Use:     "generator NAME [--description TEXT]",
		Short:   "Create a generator (a CI/CD identity); prints its PAK once",
		Example: "  brokkr create generator github-actions --description 'CI for payments'",
		Args:    cobra.ExactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			req := api.CreateGeneratorRequest{Name: args[0]}
			if genDesc != "" {
				req.Description = &genDesc
			}
			res, _, err := api.Decode[api.GeneratorPakResponse](c.CreateGenerator(ctx, nil, req))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "Generator created successfully:\nID: %s\nName: %s\nInitial PAK: %s\n", res.Generator.Id, res.Generator.Name, res.Pak)
			return nil
		}),
	}
	generator.Flags().StringVar(&genDesc, "description", "", "description")

	var tplFile, tplSchema, tplDesc string
	template := &cobra.Command{
		Use:     "template NAME --file TEMPLATE --schema SCHEMA.json [--description TEXT]",
		Short:   "Create a template (Tera syntax, JSON Schema parameters)",
		Example: "  brokkr create template web-app --file web.yaml.tera --schema web.schema.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, schema, err := readTemplateFiles(tplFile, tplSchema)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			req := api.CreateTemplateRequest{Name: args[0], TemplateContent: content}
			if tplDesc != "" {
				req.Description = &tplDesc
			}
			if err := req.ParametersSchema.FromCreateTemplateRequestParametersSchema0(schema); err != nil {
				return err
			}
			t, _, err := api.Decode[api.StackTemplate](c.CreateTemplate(cmd.Context(), nil, req))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "template/%s created (%s, version %d)\n", t.Name, t.Id, t.Version)
			return nil
		},
	}
	template.Flags().StringVarP(&tplFile, "file", "f", "", "template content (Tera)")
	template.Flags().StringVar(&tplSchema, "schema", "", "JSON Schema of the parameters (a file)")
	template.Flags().StringVar(&tplDesc, "description", "", "description")

	var whURL string
	var whEvents, whTargets []string
	webhook := &cobra.Command{
		Use:   "webhook NAME --url URL --event TYPE... [--target-label k:v]...",
		Short: "Subscribe a URL to broker events",
		Long: `create webhook subscribes URL to event types (brokkr get webhooks; see docs/webhooks.md).
A signing secret may come from BROKKR_WEBHOOK_SECRET (never a flag, to keep it out of
process lists). With --target-label, agents carrying those labels deliver from inside
their cluster.`,
		Example: "  brokkr create webhook deploys --url https://hooks.example.com/brokkr --event deployment.applied --event deployment.failed",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if whURL == "" || len(whEvents) == 0 {
				return fmt.Errorf("create webhook needs --url and at least one --event")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			req := api.CreateWebhookRequest{Name: args[0], Url: whURL, EventTypes: whEvents}
			if len(whTargets) > 0 {
				req.TargetLabels = &whTargets
			}
			if s := a.getenv("BROKKR_WEBHOOK_SECRET"); s != "" {
				req.SigningSecret = &s
			}
			w, _, err := api.Decode[api.WebhookSubscription](c.CreateWebhook(cmd.Context(), nil, req))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "webhook/%s created (%s)\n", w.Name, w.Id)
			return nil
		},
	}
	webhook.Flags().StringVar(&whURL, "url", "", "receiver URL")
	webhook.Flags().StringArrayVar(&whEvents, "event", nil, "event type (e.g. deployment.applied, or deployment.*); repeatable")
	webhook.Flags().StringArrayVar(&whTargets, "target-label", nil, "deliver from agents carrying this label; repeatable")

	cmd.AddCommand(stack, agent, generator, template, webhook)
	return cmd
}

func readTemplateFiles(content, schema string) (string, string, error) {
	if content == "" || schema == "" {
		return "", "", fmt.Errorf("a template needs --file and --schema")
	}
	c, err := os.ReadFile(content)
	if err != nil {
		return "", "", err
	}
	s, err := os.ReadFile(schema)
	if err != nil {
		return "", "", err
	}
	return string(c), string(s), nil
}

func addAgentLabel(ctx context.Context, c *api.Client, id uuid.UUID, l string) error {
	var body api.AgentLabelRequest
	if err := body.FromLabel(l); err != nil {
		return err
	}
	if _, err := api.Read(c.AddAgentLabel(ctx, id, nil, body)); err != nil && !api.IsStatus(err, http.StatusConflict) {
		return fmt.Errorf("label %q: %w", l, err)
	}
	return nil
}

// confirm asks on the terminal unless yes is set; anything but y/yes
// (including end of input) declines.
func (a *App) confirm(yes bool, prompt string) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.Err, "%s [y/N] ", prompt)
	line, _ := bufio.NewReader(a.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("not deleted (answer y, or pass --yes)")
}

func (a *App) deleteCommand() *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete agent|stack|generator|template|webhook|work-order NAME_OR_ID",
		Short: "Delete one thing (asks first unless --yes)",
		Long: `delete removes one thing after asking on the terminal; --yes skips the question (CI).
Deleting a stack publishes a deletion marker: every agent deletes what it applied for it.
Deleting a work-order cancels it.`,
		Example: `  brokkr delete stack quick-start-app
  brokkr delete agent staging-agent --yes`,
		Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			kind, ref := normalizeKind(args[0]), args[1]
			var id uuid.UUID
			var label string
			var del func() (*http.Response, error)
			switch kind {
			case "agents":
				ag, err := mustAgent(ctx, c, ref)
				if err != nil {
					return err
				}
				id, label = ag.Id, "agent "+ag.Name+"@"+ag.ClusterName
				del = func() (*http.Response, error) { return c.DeleteAgent(ctx, id) }
			case "stacks":
				st, err := mustStack(ctx, c, ref)
				if err != nil {
					return err
				}
				id, label = st.Id, "stack "+st.Name
				del = func() (*http.Response, error) { return c.DeleteStack(ctx, id) }
			case "generators":
				g, err := mustGenerator(ctx, c, ref)
				if err != nil {
					return err
				}
				id, label = g.Id, "generator "+g.Name
				del = func() (*http.Response, error) { return c.DeleteGenerator(ctx, id) }
			case "templates":
				t, err := mustTemplate(ctx, c, ref)
				if err != nil {
					return err
				}
				id, label = t.Id, "template "+t.Name
				del = func() (*http.Response, error) { return c.DeleteTemplate(ctx, id) }
			case "webhooks":
				w, err := mustWebhook(ctx, c, ref)
				if err != nil {
					return err
				}
				id, label = w.Id, "webhook "+w.Name
				del = func() (*http.Response, error) { return c.DeleteWebhook(ctx, id) }
			case "work-orders":
				wid, ok := parseID(ref)
				if !ok {
					return fmt.Errorf("a work order is named by its id")
				}
				id, label = wid, "work-order"
				del = func() (*http.Response, error) { return c.CancelWorkOrder(ctx, id) }
			default:
				return fmt.Errorf("cannot delete %q: use agent, stack, generator, template, webhook or work-order", args[0])
			}
			if err := a.confirm(yes, fmt.Sprintf("delete %s (%s)?", label, id)); err != nil {
				return err
			}
			if _, err := api.Read(del()); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "%s deleted (%s)\n", label, id)
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask")
	return cmd
}

// labelArgs splits kubectl-style arguments: "k:v" adds, "k:v-" removes.
func labelArgs(args []string) (add, remove []string) {
	for _, l := range args {
		if strings.HasSuffix(l, "-") && len(l) > 1 {
			remove = append(remove, strings.TrimSuffix(l, "-"))
		} else {
			add = append(add, l)
		}
	}
	return add, remove
}

func (a *App) labelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "label agent|stack|template NAME_OR_ID LABEL... (LABEL- removes)",
		Short: "Add or remove labels",
		Example: `  brokkr label agent staging-agent env:staging
  brokkr label stack myapp-staging env:staging tier:web
  brokkr label agent staging-agent env:staging-`,
		Args: cobra.MinimumNArgs(3),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			add, remove := labelArgs(args[2:])
			switch normalizeKind(args[0]) {
			case "agents":
				ag, err := mustAgent(ctx, c, args[1])
				if err != nil {
					return err
				}
				for _, l := range add {
					if err := addAgentLabel(ctx, c, ag.Id, l); err != nil {
						return err
					}
				}
				for _, l := range remove {
					if _, err := api.Read(c.RemoveAgentLabel(ctx, ag.Id, l)); err != nil {
						return fmt.Errorf("label %q: %w", l, err)
					}
				}
			case "stacks":
				st, err := mustStack(ctx, c, args[1])
				if err != nil {
					return err
				}
				if err := ensureStackLabels(ctx, c, st.Id, add); err != nil {
					return err
				}
				for _, l := range remove {
					if _, err := api.Read(c.RemoveStackLabel(ctx, st.Id, l)); err != nil {
						return fmt.Errorf("label %q: %w", l, err)
					}
				}
			case "templates":
				t, err := mustTemplate(ctx, c, args[1])
				if err != nil {
					return err
				}
				for _, l := range add {
					var body api.TemplateLabelRequest
					if err := body.FromLabel(l); err != nil {
						return err
					}
					if _, err := api.Read(c.AddTemplateLabel(ctx, t.Id, nil, body)); err != nil && !api.IsStatus(err, http.StatusConflict) {
						return fmt.Errorf("label %q: %w", l, err)
					}
				}
				for _, l := range remove {
					if _, err := api.Read(c.RemoveTemplateLabel(ctx, t.Id, l)); err != nil {
						return fmt.Errorf("label %q: %w", l, err)
					}
				}
			default:
				return fmt.Errorf("cannot label %q: use agent, stack or template", args[0])
			}
			fmt.Fprintf(a.Out, "%s %s labeled\n", strings.TrimSuffix(normalizeKind(args[0]), "s"), args[1])
			return nil
		}),
	}
}

func (a *App) annotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "annotate agent|stack|template NAME_OR_ID KEY=VALUE... (KEY- removes)",
		Short: "Add or remove annotations",
		Example: `  brokkr annotate agent prod-agent region=us-east-1
  brokkr annotate agent prod-agent region-`,
		Args: cobra.MinimumNArgs(3),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			type kv struct{ k, v string }
			var add []kv
			var remove []string
			for _, s := range args[2:] {
				if k, v, ok := strings.Cut(s, "="); ok {
					add = append(add, kv{k, v})
				} else if strings.HasSuffix(s, "-") {
					remove = append(remove, strings.TrimSuffix(s, "-"))
				} else {
					return fmt.Errorf("%q is neither KEY=VALUE nor KEY-", s)
				}
			}
			var addFn func(k, v string) (*http.Response, error)
			var rmFn func(k string) (*http.Response, error)
			switch normalizeKind(args[0]) {
			case "agents":
				ag, err := mustAgent(ctx, c, args[1])
				if err != nil {
					return err
				}
				addFn = func(k, v string) (*http.Response, error) {
					return c.AddAgentAnnotation(ctx, ag.Id, nil, api.AgentAnnotationRequest{Key: k, Value: v})
				}
				rmFn = func(k string) (*http.Response, error) { return c.RemoveAgentAnnotation(ctx, ag.Id, k) }
			case "stacks":
				st, err := mustStack(ctx, c, args[1])
				if err != nil {
					return err
				}
				addFn = func(k, v string) (*http.Response, error) {
					return c.AddStackAnnotation(ctx, st.Id, nil, api.StackAnnotationRequest{Key: k, Value: v})
				}
				rmFn = func(k string) (*http.Response, error) { return c.RemoveStackAnnotation(ctx, st.Id, k) }
			case "templates":
				t, err := mustTemplate(ctx, c, args[1])
				if err != nil {
					return err
				}
				addFn = func(k, v string) (*http.Response, error) {
					return c.AddTemplateAnnotation(ctx, t.Id, nil, api.TemplateAnnotationRequest{Key: k, Value: v})
				}
				rmFn = func(k string) (*http.Response, error) { return c.RemoveTemplateAnnotation(ctx, t.Id, k) }
			default:
				return fmt.Errorf("cannot annotate %q: use agent, stack or template", args[0])
			}
			for _, p := range add {
				if _, err := api.Read(addFn(p.k, p.v)); err != nil {
					return fmt.Errorf("annotation %q: %w", p.k, err)
				}
			}
			for _, k := range remove {
				if _, err := api.Read(rmFn(k)); err != nil {
					return fmt.Errorf("annotation %q: %w", k, err)
				}
			}
			fmt.Fprintf(a.Out, "%s %s annotated\n", strings.TrimSuffix(normalizeKind(args[0]), "s"), args[1])
			return nil
		}),
	}
}

func (a *App) targetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "target AGENT STACK",
		Short:   "Target a stack at an agent explicitly",
		Example: "  brokkr target staging-agent myapp-staging",
		Args:    cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			ag, st, err := agentAndStack(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			_, err = api.Read(c.AddAgentTarget(ctx, ag.Id, nil, api.AgentTargetRequest{StackId: st.Id}))
			if api.IsStatus(err, http.StatusConflict) {
				fmt.Fprintf(a.Out, "agent %s already targets stack %s\n", ag.Name, st.Name)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "agent %s targets stack %s\n", ag.Name, st.Name)
			return nil
		}),
	}
}

func (a *App) untargetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "untarget AGENT STACK",
		Short:   "Remove an explicit target",
		Example: "  brokkr untarget staging-agent myapp-staging",
		Args:    cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			ag, st, err := agentAndStack(ctx, c, args[0], args[1])
			if err != nil {
				return err
			}
			if _, err := api.Read(c.RemoveAgentTarget(ctx, ag.Id, st.Id)); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "agent %s no longer targets stack %s\n", ag.Name, st.Name)
			return nil
		}),
	}
}

// agentAndStack resolves the AGENT STACK arguments of target and untarget.
func agentAndStack(ctx context.Context, c *api.Client, agentRef, stackRef string) (*api.Agent, *api.Stack, error) {
	ag, err := mustAgent(ctx, c, agentRef)
	if err != nil {
		return nil, nil, err
	}
	st, err := mustStack(ctx, c, stackRef)
	if err != nil {
		return nil, nil, err
	}
	return ag, st, nil
}

func (a *App) rotatePAKCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-pak agent|generator NAME_OR_ID",
		Short: "Issue a new PAK (printed once); the old one stops working at once",
		Example: `  brokkr rotate-pak agent prod-1
  brokkr rotate-pak generator github-actions`,
		Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(ctx context.Context, c *api.Client, args []string) error {
			switch normalizeKind(args[0]) {
			case "agents":
				ag, err := mustAgent(ctx, c, args[1])
				if err != nil {
					return err
				}
				res, _, err := api.Decode[api.AgentPakResponse](c.RotateAgentPak(ctx, ag.Id))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.Out, "New PAK for agent %s (%s): %s\n", res.Agent.Name, res.Agent.Id, res.Pak)
			case "generators":
				g, err := mustGenerator(ctx, c, args[1])
				if err != nil {
					return err
				}
				res, _, err := api.Decode[api.GeneratorPakResponse](c.RotateGeneratorPak(ctx, g.Id))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.Out, "New PAK for generator %s (%s): %s\n", res.Generator.Name, res.Generator.Id, res.Pak)
			default:
				return fmt.Errorf("cannot rotate the PAK of %q: use agent or generator", args[0])
			}
			return nil
		}),
	}
}
