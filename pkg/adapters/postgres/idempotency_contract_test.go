package postgres_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency/idempotencytest"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
)

func TestIdempotencyKeysContract(t *testing.T) {
	idempotencytest.RunKeyRepositoryContract(t, func(t *testing.T) (journal.Transactor, idempotency.KeyRepository) {
		s := postgres.NewStore(pgtest.New(t))
		return s, postgres.NewIdempotencyKeys(s)
	})
}
