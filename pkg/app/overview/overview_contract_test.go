package overview_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/overview/overviewtest"
)

func TestMemoryFleetContract(t *testing.T) {
	overviewtest.RunFleetContract(t, func(*testing.T) overviewtest.Repos {
		m := overviewtest.NewMemory()
		return overviewtest.Repos{Read: m, World: m}
	})
}
