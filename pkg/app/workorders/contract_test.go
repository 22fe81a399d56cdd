package workorders_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/workorders/workorderstest"
)

type memAgents struct{ m *workorderstest.Memory }

func (f memAgents) Agent(_ *testing.T, active bool, labels []string, annotations map[string]string) uuid.UUID {
	return f.m.AddAgent(active, labels, annotations)
}

func TestMemoryContract(t *testing.T) {
	workorderstest.RunWorkOrderContract(t, func(*testing.T) workorderstest.Subject {
		m := workorderstest.NewMemory()
		return workorderstest.Subject{Orders: m, Claims: m, Log: m, Agents: m, Retries: m, Fixtures: memAgents{m}}
	})
}

func TestMemoryScheduleContract(t *testing.T) {
	workorderstest.RunScheduleContract(t, func(*testing.T) workorderstest.ScheduleSubject {
		m := workorderstest.NewMemory()
		return workorderstest.ScheduleSubject{Schedules: m, Runs: m, Orders: m}
	})
}
