package pakstest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
	"github.com/brokkr-go/brokkr/pkg/app/paks/pakstest"
)

func TestMemoryContract(t *testing.T) {
	pakstest.RunPAKContract(t, func(*testing.T) pakstest.Subject {
		m := pakstest.NewMemory()
		return pakstest.Subject{Lookup: m, Shorts: m, Admin: m, Tenants: m, Tx: &journaltest.Journal{},
			AddAgent: func(_ *testing.T, h string, live bool) uuid.UUID { return m.AddAgent(h, live) },
			AddGenerator: func(_ *testing.T, h string, live, active bool) uuid.UUID {
				return m.AddGenerator(h, live, active)
			}}
	})
}
