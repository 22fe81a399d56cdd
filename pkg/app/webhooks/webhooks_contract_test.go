package webhooks_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks/webhookstest"
)

func memoryRepos(*testing.T) webhookstest.Repos {
	m := webhookstest.NewMemory()
	return webhookstest.Repos{Subscriptions: m, Source: m, Deliveries: m, Agents: m, Insert: m.InsertDeliveries, World: m}
}

func TestMemorySubscriptionContract(t *testing.T) {
	webhookstest.RunSubscriptionContract(t, memoryRepos)
}

func TestMemoryDeliveryContract(t *testing.T) {
	webhookstest.RunDeliveryContract(t, memoryRepos)
}
