package deploymenthealth_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/deploymenthealth/deploymenthealthtest"
)

func TestMemoryContract(t *testing.T) {
	deploymenthealthtest.RunRecordRepositoryContract(t, func(*testing.T) deploymenthealthtest.Repos {
		m := deploymenthealthtest.NewMemory()
		return deploymenthealthtest.Repos{Records: m, Refs: m, World: m}
	})
}
