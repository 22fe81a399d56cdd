package auditlogtest_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/auditlog/auditlogtest"
)

func TestMemoryContract(t *testing.T) {
	auditlogtest.RunContract(t, func(*testing.T) auditlogtest.Subject {
		m := &auditlogtest.Memory{}
		return auditlogtest.Subject{Store: m, Write: m.Audit}
	})
}
