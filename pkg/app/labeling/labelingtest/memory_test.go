package labelingtest_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/app/labeling/labelingtest"
)

func TestMemoryContract(t *testing.T) {
	for _, unique := range []bool{true, false} {
		labelingtest.RunRepositoryContract(t, func(t *testing.T) labelingtest.Subject {
			return labelingtest.Subject{
				Repo:       labelingtest.NewMemory(unique),
				NewOwner:   func(*testing.T) uuid.UUID { return uuid.New() },
				UniqueKeys: unique,
			}
		})
	}
}
