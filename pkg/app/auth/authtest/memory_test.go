package authtest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/auth/authtest"
	"github.com/brokkr-go/brokkr/pkg/app/journal/journaltest"
)

func TestMemoryContract(t *testing.T) {
	authtest.RunPAKContract(t, func(*testing.T) authtest.Subject {
		m := authtest.NewMemory()
		return authtest.Subject{Lookup: m, Shorts: m, Admin: m, Tx: &journaltest.Journal{},
			AddAgent: func(_ *testing.T, h string, live bool) uuid.UUID { return m.AddAgent(h, live) },
			AddGenerator: func(_ *testing.T, h string, live, active bool) uuid.UUID {
				return m.AddGenerator(h, live, active)
			}}
	})
}
