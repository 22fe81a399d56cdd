package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/brokkr-go/brokkr/pkg/adapters/gonja"
	"github.com/brokkr-go/brokkr/pkg/adapters/jsonschema"
	"github.com/brokkr-go/brokkr/pkg/domain/template"
	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
	"github.com/brokkr-go/brokkr/tools/brokkr/internal/bundle"
)

func (a *App) templateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "template", Short: "Instantiate and validate templates"}

	var stack string
	var sets, files []string
	var version int
	var w waitFlags
	inst := &cobra.Command{
		Use:   "instantiate TEMPLATE --stack NAME [--set k=v]... [-f params.yaml]... [--version N] [--wait]",
		Short: "Render a template with parameters into a stack's new deployment object",
		Long: `instantiate renders TEMPLATE (name or id; the latest version unless --version) with the
parameters of the -f files (YAML or JSON, merged in order) and the --set pairs (applied last;
a.b=c sets a nested key; values are read as YAML scalars, so 3 is a number and true a
boolean), and publishes the result to the stack. The broker checks the parameters against
the template's schema and its labels against the stack's.`,
		Example: `  brokkr template instantiate web-app --stack payments --set replicas=3 --set image.tag=1.4.2
  brokkr template instantiate web-app --stack payments -f prod.yaml --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if stack == "" {
				return fmt.Errorf("instantiate needs --stack")
			}
			params, err := loadParams(files, sets)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			tp, err := mustTemplate(ctx, c, args[0])
			if err != nil {
				return err
			}
			st, err := mustStack(ctx, c, stack)
			if err != nil {
				return err
			}
			req := api.InstantiateTemplateRequest{TemplateId: tp.Id, Parameters: &params}
			if version > 0 {
				req.Version = &version
			}
			// The broker answers with the created deployment objects (an array
			// of one).
			objs, _, err := api.Decode[[]api.DeploymentObject](c.InstantiateTemplate(ctx, st.Id, nil, req))
			if err != nil {
				return err
			}
			if len(objs) == 0 {
				return fmt.Errorf("the broker created no deployment object")
			}
			obj := objs[len(objs)-1]
			fmt.Fprintf(a.Out, "instantiated template %q into stack %q: new revision (sequence %d)\n", tp.Name, st.Name, obj.SequenceId)
			if !w.wait {
				return nil
			}
			return a.waitFor(ctx, c, &applied{stack: *st, object: obj}, w)
		},
	}
	inst.Flags().StringVar(&stack, "stack", "", "stack name or id")
	inst.Flags().StringArrayVar(&sets, "set", nil, "parameter k=v (dotted keys nest); repeatable")
	inst.Flags().StringArrayVarP(&files, "values", "f", nil, "parameters file (YAML or JSON); repeatable")
	inst.Flags().IntVar(&version, "version", 0, "template version (default: latest)")
	w.register(inst)

	var schemaFile string
	var vfiles, vsets []string
	validate := &cobra.Command{
		Use:   "validate FILE [--schema SCHEMA.json] [--params params.yaml]... [--set k=v]...",
		Short: "Check a template locally: syntax, parameters against the schema, render, YAML (nothing stored)",
		Long: `validate runs the broker's own template engine and JSON Schema validator locally: it
parses FILE, checks the parameters against --schema (applying its defaults), renders, and
checks that every rendered document has apiVersion and kind. Nothing is sent to the broker.
The rendered YAML is printed with -o yaml.`,
		Example: `  brokkr template validate web.yaml.tera --schema web.schema.json --params prod.yaml
  brokkr template validate web.yaml.tera --schema web.schema.json --set replicas=2 -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			params, err := loadParams(vfiles, vsets)
			if err != nil {
				return err
			}
			var schema string
			if schemaFile != "" {
				b, err := os.ReadFile(schemaFile)
				if err != nil {
					return err
				}
				schema = string(b)
			}
			out, err := validateTemplate(cmd.Context(), string(src), schema, params)
			if err != nil {
				return err
			}
			if printYAML, _ := cmd.Flags().GetString("output"); printYAML == "yaml" {
				fmt.Fprint(a.Out, out)
				return nil
			}
			fmt.Fprintf(a.Out, "template %s is valid: %d document(s) rendered\n", args[0], len(bundle.Split(out)))
			return nil
		},
	}
	validate.Flags().StringVar(&schemaFile, "schema", "", "JSON Schema of the parameters")
	validate.Flags().StringArrayVar(&vfiles, "params", nil, "parameters file (YAML or JSON); repeatable")
	validate.Flags().StringArrayVar(&vsets, "set", nil, "parameter k=v; repeatable")
	validate.Flags().StringP("output", "o", "", "yaml: print the rendered documents")
	cmd.AddCommand(inst, validate)
	return cmd
}

// validateTemplate is the broker's check, run locally.
func validateTemplate(ctx context.Context, src, schema string, params map[string]any) (string, error) {
	eng := gonja.New(template.DefaultLimits())
	if err := eng.Validate(ctx, src); err != nil {
		return "", fmt.Errorf("template syntax: %w", err)
	}
	values := any(params)
	if strings.TrimSpace(schema) != "" {
		v := jsonschema.New()
		if err := v.ValidateSchema(schema); err != nil {
			return "", fmt.Errorf("parameters schema: %w", err)
		}
		withDefaults, violations, err := v.Validate(schema, params)
		if err != nil {
			return "", fmt.Errorf("parameters: %w", err)
		}
		if len(violations) > 0 {
			return "", fmt.Errorf("parameters do not match the schema: %s", template.JoinViolations(violations))
		}
		values = withDefaults
	}
	m, _ := values.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	out, err := eng.Render(ctx, src, m)
	if err != nil {
		return "", fmt.Errorf("render: %w", err)
	}
	docs := bundle.Split(out)
	if len(docs) == 0 {
		return "", fmt.Errorf("the template renders no Kubernetes object")
	}
	for i, d := range docs {
		if err := bundle.Validate(d); err != nil {
			return "", fmt.Errorf("rendered document %d: %w", i+1, err)
		}
	}
	return out, nil
}

// loadParams merges parameter files, then --set pairs.
func loadParams(files, sets []string) (map[string]any, error) {
	params := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		merge(params, m)
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil || val == nil && v != "null" && v != "~" {
			val = v
		}
		if _, isMap := val.(map[string]any); isMap {
			val = v
		}
		if _, isList := val.([]any); isList {
			val = v
		}
		setPath(params, strings.Split(k, "."), val)
	}
	// Round-trip through JSON so the values are what the broker will see.
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	return out, json.Unmarshal(b, &out)
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func setPath(m map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}
