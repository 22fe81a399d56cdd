package cli

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	api "github.com/brokkr-go/brokkr/tools/brokkr/internal/apiclient"
)

func (a *App) versionCommand() *cobra.Command {
	var clientOnly bool
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the client version and the broker's (its API version from /docs/openapi.json)",
		Example: "  brokkr version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.Out, "Client: brokkr %s\n", clientVersion())
			if clientOnly {
				return nil
			}
			s, err := a.settings()
			if err != nil {
				return err
			}
			if s.BrokerURL == "" {
				fmt.Fprintln(a.Out, "Server: <no broker URL configured>")
				return nil
			}
			// The spec route needs no PAK; none is sent.
			c, err := api.New(api.Options{BrokerURL: s.BrokerURL, UserAgent: "brokkr-cli/" + clientVersion(), MaxAttempts: 1})
			if err != nil {
				return err
			}
			resp, err := c.GetOpenApiSpec(cmd.Context())
			var ver string
			server := ""
			if err == nil {
				server = resp.Header.Get("Server")
				if resp.StatusCode == http.StatusOK {
					var doc struct {
						Info struct {
							Title   string `json:"title"`
							Version string `json:"version"`
						} `json:"info"`
					}
					if json.NewDecoder(resp.Body).Decode(&doc) == nil {
						ver = doc.Info.Title + " " + doc.Info.Version
					}
				}
				resp.Body.Close()
			}
			if err != nil {
				fmt.Fprintf(a.Out, "Server: %s unreachable: %v\n", s.BrokerURL, err)
				return &exitError{code: ExitError, err: fmt.Errorf("cannot reach %s", s.BrokerURL)}
			}
			if ver == "" {
				ver = "unknown"
			}
			fmt.Fprintf(a.Out, "Server: %s (%s)", ver, s.BrokerURL)
			if server != "" {
				fmt.Fprintf(a.Out, " %s", server)
			}
			fmt.Fprintln(a.Out)
			return nil
		},
	}
}
