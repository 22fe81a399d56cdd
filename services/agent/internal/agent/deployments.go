package agent

import (
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/services/agent/internal/deploy"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// newManager wires the reconciler (with the stack inventories in invNS)
// and the reconcile manager, reporting through the outbox.
func (a *Agent) newManager(k *kube.Client, agentID uuid.UUID, invNS string) *reconcile.Manager {
	rec := reconcile.New(k, reconcile.Options{AgentID: agentID, Logger: a.log,
		Inventory: reconcile.NewConfigMapInventory(k.Dynamic, invNS, agentID)})
	return reconcile.NewManager(rec, reporter{a}, reconcile.ManagerOptions{
		Concurrency: a.set.StackConcurrency,
		Retry:       a.set.RetryBackoff,
		DriftMode:   a.set.DriftModeName(),
		Logger:      a.log,
		OnDrift: func(stack.DeploymentObject, reconcile.DriftReport) {
			a.metrics.DriftDetected.Inc()
		},
		OnOutcome: func(do stack.DeploymentObject, err error, took time.Duration) {
			op := "apply"
			if do.IsDeletionMarker {
				op = "delete"
			}
			a.metrics.KubeOperations.WithLabelValues(op).Inc()
			a.metrics.KubeOperationTime.WithLabelValues(op).Observe(took.Seconds())
			result := "success"
			if err != nil {
				result = "failure"
			}
			a.metrics.Reconciles.WithLabelValues(result).Inc()
		},
	})
}

// coreHooks are the hooks every agent runs, ahead of the optional ones:
// target state and drift (internal/deploy).
func (a *Agent) coreHooks() []Hook {
	opts := deploy.Options{
		PollInterval:  a.PollingInterval(),
		Wait:          a.set.TargetStateWait(),
		DriftInterval: a.set.DriftInterval(),
		Metrics: deploy.Metrics{PollRequests: a.metrics.PollRequests, PollDuration: a.metrics.PollDuration,
			LastSuccessfulPoll: a.metrics.LastSuccessfulPoll, KubeOperations: a.metrics.KubeOperations,
			KubeOperationTime: a.metrics.KubeOperationTime},
	}
	return []Hook{deploy.TargetStateHook(opts), deploy.DriftHook(opts)}
}
