package diagnostics_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/diagnostics/diagnosticstest"
)

func TestMemoryContract(t *testing.T) {
	diagnosticstest.RunRequestRepositoryContract(t, func(*testing.T) diagnosticstest.Repos {
		m := diagnosticstest.NewMemory()
		return diagnosticstest.Repos{Requests: m, Refs: m, World: m}
	})
}
