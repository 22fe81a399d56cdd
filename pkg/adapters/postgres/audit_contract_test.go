package postgres_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/adapters/postgres"
	"github.com/brokkr-go/brokkr/pkg/adapters/postgres/pgtest"
	"github.com/brokkr-go/brokkr/pkg/app/auditlog/auditlogtest"
)

func TestAuditLogContract(t *testing.T) {
	auditlogtest.RunContract(t, func(t *testing.T) auditlogtest.Subject {
		s := postgres.NewStore(pgtest.New(t))
		return auditlogtest.Subject{Store: postgres.NewAuditLog(s), Write: s.Audit}
	})
}
