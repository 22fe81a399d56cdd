package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Extra holds the agent settings that pkg/platform/config does not model
// yet. They are read from BROKKR__AGENT__* in this one place and removed
// from the environment config.Load sees (it rejects unknown keys).
type Extra struct {
	// DriftCheckInterval: how often applied objects are checked for drift
	// (drift_check_interval, seconds, default 300; 0 disables).
	DriftCheckInterval time.Duration
	// DriftMode: "correct" (default) re-applies, "report" only reports.
	DriftMode string
	// OutboxDir holds the durable outbox (outbox_dir; default
	// $TMPDIR/brokkr-agent/outbox; "memory" keeps it in memory only).
	OutboxDir string
	// OutboxMaxBytes bounds the outbox (outbox_max_bytes, default 64 MiB).
	OutboxMaxBytes int64
	// StackConcurrency bounds stacks reconciled at once (stack_concurrency,
	// default 4).
	StackConcurrency int
	// ShutdownGrace is how long a drain waits for in-flight work
	// (shutdown_grace_seconds, default 30).
	ShutdownGrace time.Duration
	// TargetStateWait is the long-poll wait sent to the broker
	// (target_state_wait_seconds, default 30; 0 polls every
	// polling_interval).
	TargetStateWait time.Duration
	// RetryBackoff paces retries of failed deployment objects; the zero
	// value is the Manager's default (5 s … 5 min). Not read from the
	// environment: tests shorten it.
	RetryBackoff kube.Backoff
}

// ExtraKeys are the env names Extra reads.
var ExtraKeys = []string{
	"BROKKR__AGENT__DRIFT_CHECK_INTERVAL",
	"BROKKR__AGENT__DRIFT_MODE",
	"BROKKR__AGENT__OUTBOX_DIR",
	"BROKKR__AGENT__OUTBOX_MAX_BYTES",
	"BROKKR__AGENT__STACK_CONCURRENCY",
	"BROKKR__AGENT__SHUTDOWN_GRACE_SECONDS",
	"BROKKR__AGENT__TARGET_STATE_WAIT_SECONDS",
}

// DefaultExtra returns the defaults.
func DefaultExtra() Extra {
	return Extra{
		DriftCheckInterval: 5 * time.Minute,
		DriftMode:          reconcile.DriftCorrect,
		OutboxDir:          filepath.Join(os.TempDir(), "brokkr-agent", "outbox"),
		OutboxMaxBytes:     64 << 20,
		StackConcurrency:   4,
		ShutdownGrace:      30 * time.Second,
		TargetStateWait:    30 * time.Second,
	}
}

// SplitEnv reads Extra from environ and returns the remaining variables for
// config.Load. A bad value is a configuration error (exit 64).
func SplitEnv(environ []string) (Extra, []string, error) {
	x := DefaultExtra()
	var rest []string
	var problems []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		known := false
		for _, e := range ExtraKeys {
			if strings.EqualFold(k, e) {
				known = true
			}
		}
		if !known {
			rest = append(rest, kv)
			continue
		}
		v = strings.TrimSpace(v)
		key := strings.ToLower(strings.TrimPrefix(strings.ToUpper(k), "BROKKR__AGENT__"))
		bad := func(msg string) { problems = append(problems, fmt.Sprintf("agent.%s: %s, got %q", key, msg, v)) }
		seconds := func() (time.Duration, bool) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				bad("must be a whole number of seconds ≥ 0")
				return 0, false
			}
			return time.Duration(n) * time.Second, true
		}
		switch key {
		case "drift_check_interval":
			if d, ok := seconds(); ok {
				x.DriftCheckInterval = d
			}
		case "drift_mode":
			switch strings.ToLower(v) {
			case reconcile.DriftCorrect, reconcile.DriftReportOnly:
				x.DriftMode = strings.ToLower(v)
			default:
				bad(`must be "correct" or "report"`)
			}
		case "outbox_dir":
			x.OutboxDir = v
		case "outbox_max_bytes":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 4096 {
				bad("must be a number of bytes ≥ 4096")
			} else {
				x.OutboxMaxBytes = n
			}
		case "stack_concurrency":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 64 {
				bad("must be between 1 and 64")
			} else {
				x.StackConcurrency = n
			}
		case "shutdown_grace_seconds":
			if d, ok := seconds(); ok {
				x.ShutdownGrace = d
			}
		case "target_state_wait_seconds":
			if d, ok := seconds(); ok {
				x.TargetStateWait = min(d, 60*time.Second)
			}
		}
	}
	if len(problems) > 0 {
		return x, rest, &config.Error{Problems: toProblems(problems)}
	}
	return x, rest, nil
}

func toProblems(msgs []string) []config.Problem {
	out := make([]config.Problem, len(msgs))
	for i, m := range msgs {
		k, msg, _ := strings.Cut(m, ": ")
		out[i] = config.Problem{Key: k, Msg: msg}
	}
	return out
}

// Settings is everything the agent runtime needs.
type Settings struct {
	config.Agent
	Extra
	// Version is reported in /health.
	Version string
}

// Validate checks what the agent cannot run without (DECISIONS 22: 64).
func (s Settings) Validate() error {
	var problems []config.Problem
	if s.PAK.IsZero() {
		problems = append(problems, config.Problem{Key: "agent.pak", Msg: "must be set"})
	}
	if strings.TrimSpace(s.AgentName) == "" {
		problems = append(problems, config.Problem{Key: "agent.agent_name", Msg: "must be set"})
	}
	if strings.TrimSpace(s.ClusterName) == "" {
		problems = append(problems, config.Problem{Key: "agent.cluster_name", Msg: "must be set"})
	}
	if len(problems) > 0 {
		return &config.Error{Problems: problems}
	}
	return nil
}

// PollEvery is polling_interval as a duration.
func (s Settings) PollEvery() time.Duration {
	return time.Duration(max(s.Agent.PollingInterval, 1)) * time.Second
}

var errNotStarted = errors.New("start-up not finished")
