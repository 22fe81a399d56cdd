package health_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/health/healthtest"
)

func TestMemoryContract(t *testing.T) {
	healthtest.RunRecordRepositoryContract(t, func(*testing.T) healthtest.Repos {
		m := healthtest.NewMemory()
		return healthtest.Repos{Records: m, Refs: m, World: m}
	})
}
