package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/brokkr-go/brokkr/pkg/adapters/kube"
	"github.com/brokkr-go/brokkr/pkg/platform/config"
	"github.com/brokkr-go/brokkr/services/agent/internal/reconcile"
)

// Settings is everything the agent runtime needs: the [agent] section of
// the shared configuration (BROKKR__AGENT__*, validated by config.Load) plus
// a few knobs tests shorten below the one-second resolution of the keys.
type Settings struct {
	config.Agent
	// Version is reported in /health.
	Version string

	// RetryBackoff paces retries of failed deployment objects; the zero
	// value is the Manager's default (5 s … 5 min).
	RetryBackoff kube.Backoff
	// DriftEvery, HealthEvery and DiagnosticsEvery, when > 0, replace
	// drift_check_interval, deployment_health_interval and
	// diagnostics_poll_interval.
	DriftEvery       time.Duration
	HealthEvery      time.Duration
	DiagnosticsEvery time.Duration

	// Namespace is the agent's own namespace, which holds its stack
	// inventories (services/agent/README.md#inventory). Empty means
	// InventoryNamespace's detection.
	Namespace string
}

// serviceAccountNamespace is where a pod finds its own namespace.
var serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// InventoryNamespace is the namespace holding the agent's inventories:
// Namespace when set, else $POD_NAMESPACE, else the pod's own namespace
// (its service account's), else the kubeconfig context's namespace, else
// "default".
func (s Settings) InventoryNamespace() string {
	if ns := strings.TrimSpace(s.Namespace); ns != "" {
		return ns
	}
	if ns := strings.TrimSpace(os.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b))
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.KubeconfigPath != "" {
		rules.ExplicitPath = s.KubeconfigPath
	}
	if ns, _, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).Namespace(); err == nil && ns != "" {
		return ns
	}
	return "default"
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// DriftInterval is the drift check period; 0 disables drift checks.
func (s Settings) DriftInterval() time.Duration {
	if s.DriftEvery > 0 {
		return s.DriftEvery
	}
	return seconds(max(s.DriftCheckInterval, 0))
}

// DriftModeName is drift_mode normalised: reconcile.DriftCorrect or
// reconcile.DriftReportOnly.
func (s Settings) DriftModeName() string {
	if strings.EqualFold(strings.TrimSpace(s.DriftMode), reconcile.DriftReportOnly) {
		return reconcile.DriftReportOnly
	}
	return reconcile.DriftCorrect
}

// HealthInterval is the deployment health reporting period.
func (s Settings) HealthInterval() time.Duration {
	if s.HealthEvery > 0 {
		return s.HealthEvery
	}
	return seconds(max(s.DeploymentHealthInterval, 1))
}

// DiagnosticsInterval is the period of the diagnostics poll.
func (s Settings) DiagnosticsInterval() time.Duration {
	if s.DiagnosticsEvery > 0 {
		return s.DiagnosticsEvery
	}
	return seconds(max(s.DiagnosticsPollInterval, 1))
}

// ShutdownGrace is how long a drain waits for in-flight work.
func (s Settings) ShutdownGrace() time.Duration { return seconds(max(s.ShutdownGraceSeconds, 0)) }

// TargetStateWait is the long-poll wait sent to the broker (at most 60 s).
func (s Settings) TargetStateWait() time.Duration {
	return min(seconds(max(s.TargetStateWaitSeconds, 0)), 60*time.Second)
}

// OutboxPath is the outbox folder: "" for memory only.
func (s Settings) OutboxPath() string {
	switch s.OutboxDir {
	case "memory":
		return ""
	case "":
		return filepath.Join(os.TempDir(), "brokkr-agent", "outbox")
	}
	return s.OutboxDir
}

// Validate checks what the agent cannot run without (exit code 64,
// docs/configuration.md#exit-codes).
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
