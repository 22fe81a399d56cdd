package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

func (a *Agent) onOutboxDrop(rec outbox.Record, reason string) {
	a.metrics.OutboxDropped.Inc()
	if e, ok := eventOf(rec); ok && e.EventType == domainagent.EventTypeDeploy && e.Status == domainagent.EventSuccess && a.mgr != nil {
		// The broker will keep offering the object; let it be applied and
		// reported again.
		a.mgr.Forget(e.DeploymentObjectID)
	}
	a.log.Warn("report dropped from the outbox", "seq", rec.Seq, "kind", rec.Kind, "reason", reason)
}

func eventOf(rec outbox.Record) (broker.Event, bool) {
	if rec.Kind != kindEvent {
		return broker.Event{}, false
	}
	var e broker.Event
	if err := json.Unmarshal(rec.Body, &e); err != nil {
		return broker.Event{}, false
	}
	return e, true
}

const kindEvent = "event"

// reporter queues events in the outbox.
type reporter struct{ a *Agent }

func (r reporter) Report(_ context.Context, e reconcile.Event) error {
	self := r.a.self()
	msg := e.Message
	ev := broker.Event{AgentID: self.ID, DeploymentObjectID: e.DeploymentObjectID, EventType: e.Type, Status: e.Status, Message: &msg}
	_, err := r.a.outbox.Load().Append(kindEvent, http.MethodPost, broker.EventsPath(self.ID), ev)
	return err
}

func (a *Agent) sender() outbox.Sender {
	return outbox.Sender{
		Send: func(ctx context.Context, r outbox.Record) error {
			_, err := a.broker.Send(ctx, r.Method, r.Path, r.Body, r.Key)
			return err
		},
		Verify:    a.verifyDelivered,
		Permanent: broker.Permanent,
		Delay: func(n int) time.Duration {
			return kube.Backoff{Initial: time.Second, Max: a.PollingInterval(), Deadline: -1}.Delay(n)
		},
		OnDelivered: func(r outbox.Record) {
			a.metrics.EventsSent.WithLabelValues(r.Kind).Inc()
			a.updateOutboxGauges()
		},
	}
}

func (a *Agent) updateOutboxGauges() {
	if ob := a.outbox.Load(); ob != nil {
		n, b, _ := ob.Stats()
		a.metrics.OutboxRecords.Set(float64(n))
		a.metrics.OutboxBytes.Set(float64(b))
	}
}

// verifyDelivered checks whether an event left by a previous run already
// reached the broker (identical event recorded), so it is not sent twice.
// The outbox asks only about records without an Idempotency-Key (written
// by an earlier version); keyed records are simply sent again.
func (a *Agent) verifyDelivered(ctx context.Context, r outbox.Record) (bool, error) {
	e, ok := eventOf(r)
	if !ok {
		return false, nil
	}
	events, err := a.broker.Events(ctx, e.AgentID)
	if err != nil {
		return false, err
	}
	for _, got := range events {
		if got.DeploymentObjectID == e.DeploymentObjectID && got.EventType == e.EventType && got.Status == e.Status &&
			ptrEq(got.Message, e.Message) {
			return true, nil
		}
	}
	return false, nil
}

func ptrEq(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
