package postgres_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/templates/templatestest"
)

func TestTemplateRepositoryContract(t *testing.T) {
	t.Parallel()
	templatestest.RunTemplateRepositoryContract(t, func(t *testing.T) templatestest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		r := postgres.NewTemplates(s)
		return templatestest.Subject{Templates: r, Labels: r, Provenance: r, Fixtures: pgFixtures{s}}
	})
}
