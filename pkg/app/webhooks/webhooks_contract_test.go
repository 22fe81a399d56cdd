package webhooks_test

import (
	"testing"

	"github.com/brokkr-go/brokkr/pkg/app/webhooks"
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

func TestMemoryDispatchContract(t *testing.T) {
	webhookstest.RunDispatchContract(t, func(*testing.T) webhookstest.DispatchRepos {
		m := webhookstest.NewMemory()
		return webhookstest.DispatchRepos{DispatchRepos: webhooks.DispatchRepos{Tx: m, Journal: nil, Subscriptions: m,
			Outbox: m, Queue: m, Attempts: m, Cleanup: m}, Subscriptions: m, Agents: m, World: m}
	})
}
