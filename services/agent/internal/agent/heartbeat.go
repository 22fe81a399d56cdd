package agent

import (
	"context"
	"errors"
	"time"

	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
)

func (a *Agent) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(a.PollingInterval())
	defer t.Stop()
	for {
		a.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	self := a.self()
	rec, ok, err := a.broker.Heartbeat(ctx, self.ID)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, broker.ErrRejected) {
			a.metrics.HeartbeatSent.Inc() // the original counts transport errors too
		}
		if a.brokerConnected.Swap(false) {
			a.log.Error("heartbeat failed; broker unreachable", "error", err)
		} else {
			a.log.Debug("heartbeat failed", "error", err)
		}
		return
	}
	a.metrics.HeartbeatSent.Inc()
	a.metrics.LastSuccessfulPoll.SetToCurrentTime()
	now := time.Now()
	a.lastHeartbeat.Store(&now)
	if !a.brokerConnected.Swap(true) {
		a.log.Info("broker reachable again")
		if ob := a.outbox.Load(); ob != nil {
			ob.Kick()
		}
	}
	if !ok {
		if rec, err = a.broker.GetAgent(ctx, self.ID); err != nil {
			a.log.Warn("refreshing the agent record failed", "error", err)
			return
		}
	}
	if rec.Status != self.Status {
		a.log.Info("agent status changed", "status", rec.Status)
	}
	a.record.Store(&rec)
	a.updateActivity(rec.Status)
}
