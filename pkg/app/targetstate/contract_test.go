package targetstate_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/targetstate"
	"github.com/brokkr-go/brokkr/pkg/app/targetstate/targetstatetest"
)

func TestMemoryContract(t *testing.T) {
	targetstatetest.RunSnapshotReaderContract(t, func(*testing.T) (targetstate.SnapshotReader, targetstatetest.Fixtures) {
		m := targetstatetest.NewMemory()
		return m, m
	})
}
