package apitest

import (
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth"
	"github.com/brokkr-go/brokkr/pkg/app/diagnostics"
)

// healthRepos and diagnosticsRepos wire those use cases' repositories over
// one store, as the api's wire graph does.
func healthRepos(store *postgres.Store) deploymenthealth.Repos {
	return deploymenthealth.Repos{Tx: store, Journal: store, Records: postgres.NewDeploymentHealth(store),
		Refs: postgres.NewExistence(store), Permissions: postgres.NewAgentEvents(store),
		Dependencies: postgres.NewDependencies(store)}
}

func diagnosticsRepos(store *postgres.Store) diagnostics.Repos {
	return diagnostics.Repos{Tx: store, Journal: store, Requests: postgres.NewDiagnostics(store),
		Refs: postgres.NewExistence(store)}
}
