package telemetry_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/telemetry/telemetrytest"
)

func TestMemoryContract(t *testing.T) {
	t.Parallel()
	telemetrytest.RunTelemetryContract(t, func(*testing.T) telemetrytest.Subject {
		m := telemetrytest.NewMemory()
		return telemetrytest.Subject{Store: m, Purger: m, Fixtures: m}
	})
}
