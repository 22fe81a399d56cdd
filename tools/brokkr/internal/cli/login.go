package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
	"github.com/brokkr-go/brokkr/tools/brokkr/internal/config"
)

func (a *App) loginCommand() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "login --broker-url URL --pak PAK [--context NAME]",
		Short: "Check a broker URL and PAK and save them as a context of the config file",
		Long: `login verifies the PAK against the broker (POST /api/v1/auth/pak), then stores the URL
and PAK as a context in the config file (mode 0600) and makes it the current context. The
PAK is never printed. Without --context the context is named "default". The PAK may come
from BROKKR_PAK instead of --pak (which keeps it out of the shell history).`,
		Example: `  BROKKR_PAK=$ADMIN_PAK brokkr login --broker-url http://127.0.0.1:3000 --context dev
  brokkr login --broker-url https://broker.example.com --pak "$PAK" --context prod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := firstNonBlank(a.brokerURL, a.getenv("BROKKR_BROKER_URL"))
			pak := firstNonBlank(a.pak, a.getenv("BROKKR_PAK"))
			if url == "" || pak == "" {
				return fmt.Errorf("login needs --broker-url (or BROKKR_BROKER_URL) and --pak (or BROKKR_PAK)")
			}
			o := api.Options{BrokerURL: url, PAK: pak, UserAgent: "brokkr-cli/" + clientVersion()}
			if a.debug {
				o.Debug = a.Err
			}
			c, err := api.New(o)
			if err != nil {
				return err
			}
			who, _, err := api.Decode[api.AuthPayload](c.VerifyPak(cmd.Context()))
			if err != nil {
				return err
			}
			ctxName := firstNonBlank(name, a.contextName, "default")
			path, f, err := a.loadConfig()
			if err != nil {
				return err
			}
			if f.Contexts == nil {
				f.Contexts = map[string]config.Context{}
			}
			f.Contexts[ctxName] = config.Context{BrokerURL: url, PAK: pak}
			f.CurrentContext = ctxName
			if err := config.Save(path, f); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "logged in to %s as %s; context %q saved in %s\n", url, principal(who), ctxName, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "alias of --context")
	_ = cmd.Flags().MarkHidden("name")
	return cmd
}

func principal(p api.AuthPayload) string {
	switch {
	case p.Admin:
		return "admin"
	case p.Agent != nil:
		return "agent " + p.Agent.String()
	case p.Generator != nil:
		return "generator " + p.Generator.String()
	}
	return "an unknown principal"
}

func firstNonBlank(vals ...string) string {
	for _, v := range vals {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func (a *App) configCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and switch the contexts of the config file"}
	cmd.AddCommand(&cobra.Command{
		Use:     "get-contexts",
		Short:   "List the contexts (the current one marked with *); PAKs are not shown",
		Example: "  brokkr config get-contexts",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, f, err := a.loadConfig()
			if err != nil {
				return err
			}
			t := newTable(a.Out, "CURRENT", "NAME", "BROKER", "PAK")
			for _, n := range f.ContextNames() {
				cur := ""
				if n == f.CurrentContext {
					cur = "*"
				}
				c := f.Contexts[n]
				t.row(cur, n, c.BrokerURL, pakState(c.PAK))
			}
			if f.BrokerURL != "" || f.PAK != "" {
				t.row("", "(top level)", f.BrokerURL, pakState(f.PAK))
			}
			return t.flush()
		},
	}, &cobra.Command{
		Use:     "use-context NAME",
		Short:   "Make NAME the current context",
		Example: "  brokkr config use-context prod",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, f, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, ok := f.Contexts[args[0]]; !ok {
				return fmt.Errorf("no context %q in %s (have: %s)", args[0], path, strings.Join(f.ContextNames(), ", "))
			}
			f.CurrentContext = args[0]
			if err := config.Save(path, f); err != nil {
				return err
			}
			fmt.Fprintf(a.Out, "switched to context %q\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:     "current-context",
		Short:   "Print the current context",
		Example: "  brokkr config current-context",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, f, err := a.loadConfig()
			if err != nil {
				return err
			}
			if f.CurrentContext == "" {
				return fmt.Errorf("no current context in %s", path)
			}
			fmt.Fprintln(a.Out, f.CurrentContext)
			return nil
		},
	})
	return cmd
}

func pakState(p string) string {
	if p == "" {
		return "<none>"
	}
	return "set"
}
