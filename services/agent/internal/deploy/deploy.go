// Package deploy holds the two hooks that keep the cluster at the broker's
// target state: target-state (long-poll the incremental target state and
// hand it to the reconcile manager) and drift (check the applied objects
// every drift_check_interval, correcting or reporting drift). They are
// always on; the runtime (internal/agent) starts them before the optional
// hooks.
package deploy

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/hook"
)

// TargetStates is the broker call both hooks make.
type TargetStates interface {
	TargetState(ctx context.Context, agentID uuid.UUID, q broker.TargetStateQuery) (broker.TargetState, error)
}

// Deployments is what they need from the reconcile manager
// (reconcile.Manager).
type Deployments interface {
	// Submit hands over the incremental target state.
	Submit(objs []stack.DeploymentObject)
	// Seed records objects earlier runs applied.
	Seed(objs []stack.DeploymentObject)
	// Pending reports whether the object was in the last incremental
	// target state and is not applied yet.
	Pending(id uuid.UUID) bool
	// CheckDrift checks applied objects, stack by stack.
	CheckDrift(ctx context.Context, objs []stack.DeploymentObject)
}

// Metrics are the agent's poll and operation families
// (services/agent/README.md#metrics).
type Metrics struct {
	PollRequests       *prometheus.CounterVec
	PollDuration       prometheus.Histogram
	LastSuccessfulPoll prometheus.Gauge
	KubeOperations     *prometheus.CounterVec
	KubeOperationTime  *prometheus.HistogramVec
}

// Options configure both hooks.
type Options struct {
	// PollInterval paces polls the broker does not hold, and retries
	// (polling_interval).
	PollInterval time.Duration
	// Wait is the long-poll wait asked of the broker (at most 60 s).
	Wait time.Duration
	// DriftInterval is the drift check period; 0 disables the drift hook.
	DriftInterval time.Duration
	Metrics       Metrics
}

// TargetStateHook long-polls GET /target-state with If-None-Match while the
// agent is ACTIVE and submits each new incremental target state; the first
// one also seeds the manager with what earlier runs applied.
func TargetStateHook(opts Options) hook.Hook {
	return hook.Hook{Name: "target-state", Run: func(ctx context.Context, env hook.Env) error {
		p := &poller{opts: opts, ts: env.Broker, deps: env.Deployments, agentID: env.AgentID, log: env.Logger,
			active: env.Active, waitActive: env.WaitActive}
		p.run(ctx)
		return nil
	}}
}

// DriftHook checks every applied deployment object every DriftInterval
// while the agent is ACTIVE.
func DriftHook(opts Options) hook.Hook {
	return hook.Hook{Name: "drift", Run: func(ctx context.Context, env hook.Env) error {
		if opts.DriftInterval <= 0 {
			return nil
		}
		d := &Drift{opts: opts, ts: env.Broker, deps: env.Deployments, agentID: env.AgentID, log: env.Logger}
		t := time.NewTicker(opts.DriftInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if env.Active() {
				d.Check(ctx)
			}
		}
	}}
}

type poller struct {
	opts       Options
	ts         TargetStates
	deps       Deployments
	agentID    uuid.UUID
	log        *slog.Logger
	active     func() bool
	waitActive func(ctx context.Context, d time.Duration)
}

func (p *poller) run(ctx context.Context) {
	m := p.opts.Metrics
	etag := ""
	failures := 0
	seeded := false
	for ctx.Err() == nil {
		if !p.active() {
			etag = ""
			p.waitActive(ctx, p.opts.PollInterval)
			continue
		}
		start := time.Now()
		ts, err := p.ts.TargetState(ctx, p.agentID, broker.TargetStateQuery{ETag: etag, Wait: p.opts.Wait})
		took := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.PollRequests.WithLabelValues("error").Inc()
			m.PollDuration.Observe(took.Seconds())
			d := kube.Backoff{Initial: time.Second, Max: p.opts.PollInterval, Deadline: -1}.Delay(failures)
			failures++
			p.log.Warn("fetching the target state failed", "error", err, "retry_in", d.Round(time.Millisecond).String())
			_ = lifecycle.Sleep(ctx, d) // the loop checks ctx
			continue
		}
		failures = 0
		m.PollRequests.WithLabelValues("success").Inc()
		m.PollDuration.Observe(took.Seconds())
		m.LastSuccessfulPoll.SetToCurrentTime()
		if !ts.NotModified {
			etag = ts.ETag
			p.log.Debug("target state", "objects", len(ts.Objects))
			p.deps.Submit(ts.Objects)
			if !seeded {
				seeded = p.seedApplied(ctx)
			}
		}
		// A broker that does not hold the request (or an empty ETag) must
		// not make this loop spin.
		if took < time.Second && (ts.NotModified || p.opts.Wait == 0 || ts.ETag == "") {
			_ = lifecycle.Sleep(ctx, p.opts.PollInterval) // the loop checks ctx
		}
	}
}

// seedApplied tells the manager which objects earlier runs applied (in the
// full target state and not pending), so the health monitor reports them
// without waiting for a new deployment.
func (p *poller) seedApplied(ctx context.Context) bool {
	ts, err := p.ts.TargetState(ctx, p.agentID, broker.TargetStateQuery{Full: true})
	if err != nil {
		p.log.Debug("fetching the full target state failed; retrying on the next change", "error", err)
		return false
	}
	p.deps.Seed(applied(ts.Objects, p.deps))
	return true
}

// applied is the full target state minus what is still pending.
func applied(full []stack.DeploymentObject, deps Deployments) []stack.DeploymentObject {
	var out []stack.DeploymentObject
	for _, do := range full {
		if !deps.Pending(do.ID) {
			out = append(out, do)
		}
	}
	return out
}

// Drift runs drift checks.
type Drift struct {
	opts    Options
	ts      TargetStates
	deps    Deployments
	agentID uuid.UUID
	log     *slog.Logger
}

// Check runs one drift check over every applied deployment object: the
// full target state minus what is still pending (the reconcile loop owns
// those).
func (d *Drift) Check(ctx context.Context) {
	ts, err := d.ts.TargetState(ctx, d.agentID, broker.TargetStateQuery{Full: true})
	if err != nil {
		d.log.Warn("drift check: fetching the full target state failed", "error", err)
		return
	}
	start := time.Now()
	d.deps.CheckDrift(ctx, applied(ts.Objects, d.deps))
	d.opts.Metrics.KubeOperations.WithLabelValues("drift_check").Inc()
	d.opts.Metrics.KubeOperationTime.WithLabelValues("drift_check").Observe(time.Since(start).Seconds())
}
