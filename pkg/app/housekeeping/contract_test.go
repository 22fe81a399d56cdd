package housekeeping_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/housekeeping/housekeepingtest"
)

func TestMemoryContract(t *testing.T) {
	housekeepingtest.RunHousekeepingContract(t, func(*testing.T) housekeepingtest.Subject {
		m := housekeepingtest.NewMemory()
		return housekeepingtest.Subject{Diagnostics: m, Audit: m, Fixtures: m}
	})
}
