package diagnostics

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/brokkr-go/brokkr/pkg/domain"
	"github.com/brokkr-go/brokkr/pkg/domain/diagnostic"
	"github.com/brokkr-go/brokkr/pkg/domain/stack"
	"github.com/brokkr-go/brokkr/pkg/platform/defaults"
	"github.com/brokkr-go/brokkr/services/agent/internal/agent"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/inspect"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
)

// OutboxKind marks diagnostic results in the outbox.
const OutboxKind = "diagnostic_result"

// Options tune the poller.
type Options struct {
	// Interval is diagnostics_poll_interval (default 10 s).
	Interval time.Duration
	// LogLines is diagnostics_log_lines (default 100).
	LogLines int
	// LogTimeout bounds one container's log read (default 10 s).
	LogTimeout time.Duration
	// CollectTimeout bounds one whole collection (default 2 min).
	CollectTimeout time.Duration
}

// Hook returns the diagnostics loop for the agent runtime.
func Hook(opts Options) agent.Hook {
	return agent.Hook{Name: "diagnostics", Run: func(ctx context.Context, env agent.Env) error {
		in, err := inspect.New(env.Kube)
		if err != nil {
			return err
		}
		return NewPoller(env, &Collector{In: in, LogLines: opts.LogLines, LogTimeout: opts.LogTimeout}, opts).Run(ctx)
	}}
}

// Broker is the poller's part of the broker client.
type Broker interface {
	PendingDiagnostics(ctx context.Context, agentID uuid.UUID) ([]diagnostic.Request, error)
	ClaimDiagnostic(ctx context.Context, id uuid.UUID) (diagnostic.Request, error)
	GetDeploymentObject(ctx context.Context, id uuid.UUID) (stack.DeploymentObject, error)
}

// Poller polls pending requests, claims them and submits results.
type Poller struct {
	env    agent.Env
	broker Broker
	c      *Collector
	opts   Options
	log    *slog.Logger
}

// NewPoller returns a poller; Run starts it.
func NewPoller(env agent.Env, c *Collector, opts Options) *Poller {
	defaults.Set(&opts.Interval, 10*time.Second)
	defaults.Set(&opts.CollectTimeout, 2*time.Minute)
	return &Poller{env: env, broker: env.Broker, c: c, opts: opts, log: env.Log()}
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	p.env.Poll(ctx, p.opts.Interval, nil, func() bool {
		p.Poll(ctx)
		return false
	})
	return nil
}

// Poll handles the pending requests once, one at a time, oldest first.
func (p *Poller) Poll(ctx context.Context) {
	reqs, err := p.broker.PendingDiagnostics(ctx, p.env.AgentID)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Debug("fetching pending diagnostic requests failed", "error", err)
		}
		return
	}
	sort.SliceStable(reqs, func(i, j int) bool { return reqs[i].CreatedAt.Before(reqs[j].CreatedAt) })
	for _, r := range reqs {
		if ctx.Err() != nil {
			return
		}
		if r.Status != diagnostic.Pending || (!r.ExpiresAt.IsZero() && time.Now().After(r.ExpiresAt)) {
			continue
		}
		log := p.log.With("diagnostic_request_id", r.ID, "deployment_object_id", r.DeploymentObjectID)
		claimed, err := p.broker.ClaimDiagnostic(ctx, r.ID)
		if err != nil {
			if errors.Is(err, domain.ErrConflict) {
				log.Info("diagnostic request already claimed or expired; skipped")
			} else if ctx.Err() == nil {
				log.Warn("claiming the diagnostic request failed", "error", err)
			}
			continue
		}
		if claimed.ID == uuid.Nil {
			claimed = r
		}
		p.handle(ctx, log, claimed)
	}
}

// ResultBody is the body of POST /diagnostics/{id}/result: each document
// is sent as a JSON string, as the original's agent does.
type ResultBody struct {
	PodStatuses *string   `json:"pod_statuses,omitempty"`
	Events      *string   `json:"events,omitempty"`
	LogTails    *string   `json:"log_tails"`
	Error       *string   `json:"error,omitempty"`
	CollectedAt time.Time `json:"collected_at"`
}

func (p *Poller) handle(ctx context.Context, log *slog.Logger, r diagnostic.Request) {
	start := time.Now()
	do, err := p.broker.GetDeploymentObject(ctx, r.DeploymentObjectID)
	if err != nil {
		if ctx.Err() != nil {
			return // draining: the claim goes stale and the request expires
		}
		p.submit(log, r.ID, failed("reading the deployment object: "+err.Error()))
		return
	}
	cctx, cancel := context.WithTimeout(ctx, p.opts.CollectTimeout)
	res, err := p.c.Collect(cctx, do)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		p.submit(log, r.ID, failed(err.Error()))
		return
	}
	body := ResultBody{CollectedAt: res.CollectedAt}
	body.PodStatuses, body.Events, body.LogTails = jsonString(res.PodStatuses), jsonString(res.Events), jsonString(res.LogTails)
	log.Info("diagnostics collected", "pods", len(res.PodStatuses), "events", len(res.Events), "took", time.Since(start).Round(time.Millisecond).String())
	p.submit(log, r.ID, body)
}

func failed(msg string) ResultBody {
	return ResultBody{Error: &msg, CollectedAt: time.Now().UTC()}
}

func jsonString(v any) *string {
	b, err := json.Marshal(v)
	if err != nil {
		s := "null"
		return &s
	}
	s := string(b)
	return &s
}

func (p *Poller) submit(log *slog.Logger, id uuid.UUID, body ResultBody) {
	if body.Error != nil {
		log.Warn("diagnostic collection failed; reporting the error", "error", *body.Error)
	}
	_, err := p.env.Outbox.Append(OutboxKind, http.MethodPost, broker.DiagnosticResultPath(id), body)
	if errors.Is(err, outbox.ErrTooLarge) {
		_, err = p.env.Outbox.Append(OutboxKind, http.MethodPost, broker.DiagnosticResultPath(id),
			failed("the collected diagnostics exceed agent.outbox_max_bytes"))
	}
	if err != nil {
		log.Error("could not queue the diagnostic result", "error", err)
	}
}
