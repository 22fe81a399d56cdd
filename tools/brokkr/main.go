// Command brokkr is the command line of the Brokkr control plane: a
// drop-in for the original's `brokkr` client (apply, register, deregister,
// registrations) grown into get/describe/create/delete, templates, work
// orders, diagnostics and event streams. See docs/cli.md.
package main

import (
	"os"

	"github.com/brokkr-go/brokkr/tools/brokkr/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
