package idempotency_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/idempotency"
	"github.com/brokkr-go/brokkr/pkg/app/idempotency/idempotencytest"
	"github.com/brokkr-go/brokkr/pkg/app/journal"
)

func TestMemoryContract(t *testing.T) {
	idempotencytest.RunKeyRepositoryContract(t, func(*testing.T) (journal.Transactor, idempotency.KeyRepository) {
		m := idempotencytest.NewMemory()
		return m, m
	})
}
