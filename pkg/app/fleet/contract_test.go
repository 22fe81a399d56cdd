package fleet_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/fleet/fleettest"
)

func TestMemoryContract(t *testing.T) {
	fleettest.RunContract(t, func(*testing.T) fleettest.Repos {
		m := fleettest.NewMemory()
		return fleettest.Repos{Repo: m, World: m}
	})
}
