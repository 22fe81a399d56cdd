package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/domain"
	domainagent "github.com/brokkr-go/brokkr/pkg/domain/agent"
	"github.com/brokkr-go/brokkr/pkg/platform/lifecycle"
	"github.com/brokkr-go/brokkr/services/agent/internal/broker"
	"github.com/brokkr-go/brokkr/services/agent/internal/outbox"
	"github.com/google/uuid"
)

// startupBackoff paces start-up retries: 1 s, ×2, at most 10 s apart.
var startupBackoff = kube.Backoff{Initial: time.Second, Max: 10 * time.Second, Jitter: 0.2, Deadline: -1}

// attempts is how many times start-up steps are tried (max_retries, at
// least once).
func (a *Agent) attempts() int { return max(a.set.MaxRetries, 1) }

// retry runs fn until it succeeds, fails permanently or attempts run out.
func (a *Agent) retry(ctx context.Context, what string, permanent func(error) bool, fn func(context.Context) error) error {
	var err error
	for i := range a.attempts() {
		if err = fn(ctx); err == nil || (permanent != nil && permanent(err)) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i+1 < a.attempts() {
			d := startupBackoff.Delay(i)
			a.log.Warn(what+" failed, retrying", "attempt", i+1, "of", a.attempts(), "retry_in", d.Round(time.Millisecond).String(), "error", err)
			if err := lifecycle.Sleep(ctx, d); err != nil {
				return err
			}
		}
	}
	return err
}

func (a *Agent) startup(ctx context.Context) error {
	a.setState(StateWaitingForBroker)
	if err := a.retry(ctx, "waiting for the broker", nil, a.broker.Ready); err != nil {
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("broker %s never became ready after %d attempt(s): %w", a.broker.BaseURL(), a.attempts(), err))
	}
	a.brokerConnected.Store(true)

	a.setState(StateAuthenticating)
	unauthorized := func(err error) bool { return errors.Is(err, domain.ErrUnauthenticated) }
	if err := a.retry(ctx, "verifying the PAK", unauthorized, a.broker.VerifyPAK); err != nil {
		if unauthorized(err) {
			return lifecycle.WithCode(lifecycle.ExitNoPermission, errors.New("the broker rejected the agent PAK (401)"))
		}
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("verifying the PAK: %w", err))
	}
	var self domainagent.Agent
	err := a.retry(ctx, "fetching the agent record", broker.Permanent, func(ctx context.Context) error {
		var err error
		self, err = a.broker.FindAgent(ctx, a.set.AgentName, a.set.ClusterName)
		return err
	})
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrNotFound):
		return lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("agent %q in cluster %q is not registered with the broker", a.set.AgentName, a.set.ClusterName))
	case errors.Is(err, domain.ErrUnauthenticated) || errors.Is(err, domain.ErrForbidden):
		return lifecycle.WithCode(lifecycle.ExitNoPermission, fmt.Errorf("the PAK may not read agent %q: %w", a.set.AgentName, err))
	case broker.Permanent(err):
		return fmt.Errorf("fetching the agent record: %w", err)
	default:
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("fetching the agent record: %w", err))
	}
	a.record.Store(&self)
	a.log = a.log.With("agent_id", self.ID.String())
	a.log.Info("agent record fetched", "status", self.Status)
	a.registerWithGenerators(ctx)

	k, err := a.newKube()
	if err != nil {
		return lifecycle.WithCode(lifecycle.ExitConfig, fmt.Errorf("kubernetes client: %w", err))
	}
	var version string
	if err := a.retry(ctx, "reaching the Kubernetes API", nil, func(ctx context.Context) error {
		info, err := k.ServerVersion(ctx)
		if err == nil {
			version = info.GitVersion
		}
		return err
	}); err != nil {
		return lifecycle.WithCode(lifecycle.ExitUnavailable, fmt.Errorf("kubernetes API unreachable: %w", err))
	}
	a.kube.Store(k)
	a.log.Info("connected to Kubernetes", "version", version)
	if old, ok := olderThan(version, 1, 29); ok && old {
		a.log.Warn("Kubernetes is older than the supported 1.29", "version", version)
	}

	a.openOutbox(self.ID)
	return nil
}

// registerWithGenerators registers the agent with each of
// agent.generator_ids, as 0.9.1's agent does at start-up: a 409
// (already registered) is success, a malformed id or any other failure is
// logged and skipped; nothing here blocks start-up.
func (a *Agent) registerWithGenerators(ctx context.Context) {
	for _, raw := range a.set.GeneratorIDs {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		gen, err := uuid.Parse(raw)
		if err != nil {
			a.log.Warn("skipping a malformed generator id in agent.generator_ids", "value", raw)
			continue
		}
		err = a.retry(ctx, "registering with a generator", broker.Permanent, func(ctx context.Context) error {
			return a.broker.RegisterWithGenerator(ctx, gen)
		})
		switch {
		case err == nil:
			a.log.Info("registered with generator", "generator_id", gen.String())
		case errors.Is(err, domain.ErrConflict):
			a.log.Info("already registered with generator", "generator_id", gen.String())
		default:
			a.log.Warn("could not register with generator; continuing", "generator_id", gen.String(), "error", err)
		}
	}
}

// olderThan parses "v1.37.2" and reports whether it is older than
// major.minor; ok is false when the version does not parse.
func olderThan(v string, major, minor int) (older, ok bool) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return false, false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(strings.TrimRight(parts[1], "+"))
	if err1 != nil || err2 != nil {
		return false, false
	}
	return ma < major || (ma == major && mi < minor), true
}

func (a *Agent) openOutbox(agentID uuid.UUID) {
	opts := outbox.Options{MaxBytes: a.set.OutboxMaxBytes, Logger: a.log, OnDrop: a.onOutboxDrop}
	if dir := a.set.OutboxPath(); dir != "" {
		opts.Dir = filepath.Join(dir, agentID.String())
	}
	ob, err := outbox.Open(opts)
	if err != nil {
		a.log.Error("outbox unavailable on disk; keeping reports in memory only", "dir", opts.Dir, "error", err)
		opts.Dir = ""
		ob, _ = outbox.Open(opts)
	}
	if n, _, _ := ob.Stats(); n > 0 {
		a.log.Info("outbox holds reports from a previous run; they will be replayed in order", "records", n)
	}
	a.outbox.Store(ob)
}
